"""Rollups: per contract and time bucket statistics recomputed from the base tables for the buckets
the ``commits`` change feed says changed (README "Rollups")."""
