"""What a tracked contract is, and so which decoder reads its receipts."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    VERIFIER = "verifier"  # NEAR Intents (dip4), as intents.near
    WORKSHOP_VERIFIER = "workshop-verifier"
    WORKSHOP_SOLVER = "workshop-solver"
    NONE = "none"  # NEP-297 events and receipts only
