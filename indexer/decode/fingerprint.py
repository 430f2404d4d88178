"""What shapes the rows of each owner: stored with every stream, so that two decodings of one
contract are never mixed silently (``store.writer.check_fingerprints``)."""

from __future__ import annotations

import hashlib

from indexer.decode import DECODER_VERSION
from indexer.decode.block import DecoderConfig
from indexer.decode.roles import Role
from indexer.decode.rows import BLOCK_OWNER

_WORKSHOP = {Role.WORKSHOP_VERIFIER, Role.WORKSHOP_SOLVER}


def describe(config: DecoderConfig) -> dict[str, str]:
    """owner -> readable description of everything its rows depend on."""
    workshop = sorted(f"{c.account}:{c.role.value}" for c in config.contracts if c.role in _WORKSHOP)
    out = {BLOCK_OWNER: f"decoder {DECODER_VERSION}"}
    for c in config.contracts:
        parts = [f"decoder {DECODER_VERSION}", f"role {c.role.value}"]
        if c.role is Role.VERIFIER:
            parts.append("solvers " + ",".join(sorted(config.solver_accounts)))
        if c.role in _WORKSHOP:
            parts.append("workshop " + ",".join(workshop))  # the decoders pair verifier and solver receipts
        out[c.account] = "; ".join(parts)
    return out


def fingerprints(config: DecoderConfig) -> dict[str, str]:
    """owner -> short hash of ``describe``: what streams store and compare."""
    return {owner: f"v{DECODER_VERSION}-" + hashlib.sha256(text.encode()).hexdigest()[:12]
            for owner, text in describe(config).items()}
