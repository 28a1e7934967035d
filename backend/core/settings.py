"""Process settings, read once from the environment (prefix ``XF_``).

One pydantic class so an operator can see every knob in one place; the
production guard lives here too so a misconfigured deployment never starts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-do-not-use-in-production"


class ConfigurationError(RuntimeError):
    """Raised at start-up when the settings are unsafe for the chosen environment."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XF_", env_file=None, extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = "sqlite+aiosqlite:///./var/xinfang.db"
    # The PostgreSQL role every request runs as (``SET LOCAL ROLE``); it owns nothing
    # and cannot bypass row-level security. Migrations create it.
    db_app_role: str = "xinfang_app"
    db_pool_size: int = 10
    redis_url: str | None = None
    jwt_secret: str | None = None
    jwt_ttl_seconds: int = 8 * 3600
    cors_origins: str = ""
    default_timezone: str = "Asia/Shanghai"
    # GraphQL guards against hostile queries (see docs/graphql-limits.md).
    graphql_max_depth: int = 10
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    run_jobs_in_process: bool = Field(
        default=True, description="Run scheduled jobs inside `serve` when no Redis is configured"
    )
    log_level: str = "INFO"
    # Notification outbox dispatcher (docs/notifications.md).
    notify_batch_size: int = Field(default=20, ge=1, le=500)
    notify_lease_seconds: float = Field(
        default=120, gt=0, description="A claimed row is re-claimed after this (worker died)"
    )
    notify_backoff_base_seconds: float = 30
    notify_backoff_max_seconds: float = 6 * 3600
    notify_max_attempts_webhook: int = Field(default=8, ge=1)
    notify_max_attempts_sms: int = Field(default=5, ge=1)
    notify_max_attempts_email: int = Field(default=5, ge=1)
    notify_http_timeout_seconds: float = 10
    notify_run_budget_seconds: float = Field(
        default=50, description="A dispatch run stops claiming after this; the next run goes on"
    )
    notify_tenant_concurrency: int = Field(default=4, ge=1)
    # SMS gateway over HTTP: POST of XF_SMS_TEMPLATE (JSON; ${phone} ${text} ${delivery_id} ...).
    sms_url: str | None = None
    sms_template: str = '{"to": "${phone}", "text": "${text}", "reference": "${delivery_id}"}'
    sms_username: str | None = None
    sms_password: str | None = None
    # E-mail over SMTP.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "xinfang@localhost"
    smtp_starttls: bool = False
    smtp_ssl: bool = False

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def effective_jwt_secret(self) -> str:
        """The signing key; the dev default exists only outside production."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.env == "prod":
            raise ConfigurationError("XF_JWT_SECRET must be set when XF_ENV=prod")
        return DEV_JWT_SECRET

    def check_production_safety(self) -> None:
        """Refuse to start a production process with a missing or default secret."""
        if self.env != "prod":
            return
        if not self.jwt_secret or self.jwt_secret == DEV_JWT_SECRET:
            raise ConfigurationError("XF_JWT_SECRET must be set to a real secret when XF_ENV=prod")
        if len(self.jwt_secret) < 32:
            raise ConfigurationError("XF_JWT_SECRET must be at least 32 characters in production")


@lru_cache
def get_settings() -> Settings:
    return Settings()
