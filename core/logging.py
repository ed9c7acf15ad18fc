"""structlog set-up: JSON lines in production, readable console in development.

Every line carries the request id and the municipality while a request is being handled (bound through
contextvars by the HTTP entry point). Standard-library loggers (uvicorn, alembic, dramatiq) go through the same
renderer. Secrets (passwords, tokens, API keys, cookies) are scrubbed from every line just before it is rendered,
structlog's and the standard library's alike (:mod:`core.identity.redaction`); in JSON logs the tracebacks too.
The development console draws tracebacks itself, after that step, from the live exception.
"""

from __future__ import annotations

import logging
import sys

import structlog

from core.identity.redaction import redact_secrets
from core.settings import Settings

_SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(settings: Settings) -> None:
    """Configure structlog and stdlib logging for this process (idempotent)."""
    renderer: structlog.types.Processor
    if settings.json_logs:
        renderer = structlog.processors.JSONRenderer()
        exception_processor: list[structlog.types.Processor] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        exception_processor = []
    level = getattr(logging, settings.log_level.upper())
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exception_processor,
            redact_secrets,  # after the traceback became text, so it is scrubbed too
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One access line per request is written by the platform itself, with municipality and request id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
