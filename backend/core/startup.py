"""What a process checks before it serves: refuse to start rather than fail later."""

from __future__ import annotations

from backend.core.crypto import check_keys
from backend.core.settings import Settings


def check_startup(settings: Settings) -> None:
    """Raise ``ConfigurationError`` for unsafe settings: secrets, key formats, the PII keys
    (dev keys only outside production), the webhook allow-list."""
    settings.check_production_safety()
    check_keys(settings)
