"""structlog set-up: readable console lines on a terminal, JSON lines otherwise.

Context such as block height, shard and receipt is bound with contextvars by the decoder, so
every line logged while a block is processed says where it was. Libraries that log through the
standard ``logging`` module (urllib3, botocore, aiobotocore, aiohttp, near-lake-framework) go
through the same processors and renderer, so a JSON log stays one JSON object per line.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(log_format: str = "auto", level: str = "info") -> None:
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()] if use_json
        else [structlog.dev.ConsoleRenderer()]
    )
    # The daemon's own lines skip stdlib logging altogether (the hot path stays cheap).
    structlog.configure(
        processors=shared + renderer,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    ))
    root = logging.getLogger()
    # Replace whatever handlers an import installed (near-lake-framework calls basicConfig at import).
    root.handlers = [handler]
    # Libraries stay quiet below warnings: their info lines (every S3 request...) are noise here.
    root.setLevel(max(logging.WARNING, _LEVELS[level]))
