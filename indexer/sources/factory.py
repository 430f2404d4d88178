"""Picks the block source named by the settings.

Kept apart from :mod:`indexer.sources.base` so that the sources import base and the factory
imports the sources, never the other way round.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import structlog

from indexer.sources.base import BlockSource, SourceError

if TYPE_CHECKING:
    from indexer.config import Settings

log = structlog.get_logger(__name__)


def open_source(settings: "Settings") -> BlockSource:
    """The source named by ``settings.source``; errors say how to fix the setting."""
    # Each source is imported only when chosen: lake pulls in aiobotocore, neardata aiohttp.
    spec = settings.source
    if spec.startswith("files:"):
        from indexer.sources.files import FilesSource

        return FilesSource(spec.removeprefix("files:"), settings)
    if spec == "auto":
        spec = "lake" if _aws_credentials_configured() else "neardata"
        log.info("source chosen", source=spec, reason="AWS credentials found" if spec == "lake" else "no AWS credentials")
    if spec == "lake":
        from indexer.sources.lake import LakeSource

        return LakeSource(settings)
    if spec == "neardata":
        from indexer.sources.neardata import NeardataSource

        return NeardataSource(settings)
    raise SourceError(f"unknown source {settings.source!r}: use lake, neardata, files:PATH or auto")


def _aws_credentials_configured() -> bool:
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if os.environ.get("AWS_PROFILE"):
        return True
    creds = os.path.expanduser(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))
    return os.path.exists(creds)
