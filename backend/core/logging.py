"""structlog JSON logs; request id, tenant and user travel in contextvars.

Libraries that log through the standard ``logging`` module (casbin, uvicorn, alembic)
are rendered by the same JSON processors, so every line on stderr is one JSON object.
"""

from __future__ import annotations

import logging
import sys

import structlog

# casbin logs its whole model and policy at INFO while an enforcer is built (one line
# of several kilobytes), alembic each plugin it sets up: only warnings are worth a line.
QUIET_LIBRARIES = {"casbin": logging.WARNING, "alembic.runtime.plugins": logging.WARNING}

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _Stderr:
    """``sys.stderr`` as it is when a line is written, not when logging was configured:
    CLI runners and test captures swap (and close) the stream they lent."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def quiet_libraries() -> None:
    """Raise the noisy libraries' loggers to their floor (safe to call before configuring)."""
    for name, level in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(level)


def configure_logging(level: str = "INFO") -> None:
    quiet_libraries()
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
        )
    )
    logging.basicConfig(handlers=[handler], level=level.upper())
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
