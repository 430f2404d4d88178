"""NEAR Intents indexer: NEAR Lake blocks -> decoded Verifier/Solver activity -> ClickHouse."""

__version__ = "0.1.0"
