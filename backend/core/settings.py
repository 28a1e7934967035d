"""Process settings, read once from the environment (prefix ``XF_``).

One pydantic class so an operator can see every knob in one place; the
production guard lives here too so a misconfigured deployment never starts.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.core.clock import DEFAULT_TIMEZONE

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
    # test every pooled connection with a round trip when checked out; off: a dropped
    # connection is found by the request's first statement, which is retried once
    db_pool_pre_ping: bool = False
    # PostgreSQL plan_cache_mode of a transaction's statements after its first, which sets
    # it (the connection plans in auto; backend/core/db.py says why).
    db_plan_cache_mode: Literal["auto", "force_custom_plan", "force_generic_plan"] = (
        "force_custom_plan"
    )
    # PostgreSQL's JIT for the app's connections: off by default (backend/core/db.py says
    # why); true sends nothing and leaves the server's own setting (behind PgBouncer).
    db_jit: bool = False
    # Compiled reads (backend/cases/compiled.py): the case list, case detail and warning
    # board answered by one SQL statement building the JSON. None = on for PostgreSQL;
    # never on SQLite (the SQL is PostgreSQL's).
    compiled_reads: bool | None = None
    redis_url: str | None = None
    jwt_secret: str | None = None
    # Key rotation (deploy/README.md "Rotate keys"): ``kid:secret,kid2:secret2`` or a JSON
    # object; tokens are signed with ``jwt_active_kid`` and verified with any listed key.
    jwt_keys: str | None = None
    jwt_active_kid: str | None = None
    jwt_ttl_seconds: int = 8 * 3600
    # the longest lifetime (exp - iat) a token may claim; `xinfang token --ttl` stays below
    jwt_max_ttl_seconds: int = Field(default=31 * 24 * 3600, ge=60)
    cors_origins: str = ""
    default_timezone: str = DEFAULT_TIMEZONE
    # GraphQL guards against hostile queries (see docs/graphql-limits.md).
    graphql_max_depth: int = 10
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 5000
    graphql_max_cost: int = Field(
        default=20000, description="Static cost limit: lists weigh `first` × their children"
    )
    graphql_default_list_size: int = Field(
        default=10, ge=1, description="Assumed length of a list field without `first`"
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="POST /graphql cap")
    # Subscriptions over WebSocket (docs/subscriptions.md): per account and process.
    ws_max_connections_per_user: int = Field(
        default=5, ge=1, description="Open WebSockets per account per process"
    )
    ws_max_message_bytes: int = Field(
        default=65_536, ge=1024, description="Largest message a client may send on a WebSocket"
    )
    # The connection that LISTENs for subscriptions' events (PostgreSQL): LISTEN needs a
    # session of its own, which PgBouncer in transaction mode does not give; default: the
    # database URL.
    live_listen_url: str | None = None
    ws_connection_init_timeout_seconds: int = Field(
        default=10, ge=1, description="How long a WebSocket may wait before connection_init"
    )
    # Rate limits (docs/graphql-limits.md): points per window, on Redis when configured.
    # None = on, except under XF_ENV=test where the suite's shared tokens would trip them.
    rate_limit_enabled: bool | None = None
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    rate_limit_user: int = Field(default=600, ge=1, description="Points per user per window")
    rate_limit_tenant: int = Field(default=20000, ge=1, description="Points per city per window")
    rate_limit_mutation_cost: int = Field(
        default=5, ge=1, description="Points per mutation field; a query root field costs 1"
    )
    rate_limit_export_cost: int = Field(
        default=10, ge=1, description="Points per /exports download (a report or .ics costs 1)"
    )
    rate_limit_id_search: int = Field(
        default=20, ge=1, description="Searches by id number per user per id-search window"
    )
    rate_limit_id_search_window_seconds: int = Field(default=3600, ge=1)
    # A monthly report's signed link (``MonthlyReport.htmlLink``) stays valid this long.
    report_link_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    # /metrics: when set, scrapes must send ``Authorization: Bearer <token>``; in prod
    # /metrics is not served at all without it (docs/security.md, deploy/README.md).
    metrics_token: str | None = None
    run_jobs_in_process: bool = Field(
        default=True, description="Run scheduled jobs inside `serve` when no Redis is configured"
    )
    log_level: str = "INFO"
    # Tenants whose job steps (deadline scan, digest, …) run at once on PostgreSQL; each
    # holds one pooled connection while it runs (backend/jobs/runs.py says why).
    job_tenant_concurrency: int = Field(default=2, ge=1, le=16)
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
    webhook_allowed_networks: str = Field(
        default="",
        description=(
            "CIDRs a city's webhook may reach although they are loopback, private, link-local"
            " or otherwise not public (comma-separated, e.g. 10.8.0.0/16); none by default"
        ),
    )
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
    # PII at rest (docs/security.md): AES-256-GCM keys as ``kid:base64key,kid2:base64key``;
    # new values are encrypted with ``pii_active_key`` (default: the first listed), old
    # ones decrypt with whichever listed key their ciphertext names. ``pii_hash_key``
    # (base64, >= 32 bytes) keys the searchable HMAC of id numbers and phones; it is
    # long-lived (rotating it means re-hashing, see `xinfang pii rotate-key`).
    pii_keys: str | None = None
    pii_active_key: str | None = None
    pii_hash_key: str | None = None

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

    @property
    def jwt_key_map(self) -> dict[str, str]:
        """``XF_JWT_KEYS`` as ``{kid: secret}`` (JSON object or ``kid:secret,…``)."""
        raw = (self.jwt_keys or "").strip()
        if not raw:
            return {}
        if raw.startswith("{"):
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise ConfigurationError("XF_JWT_KEYS is not valid JSON") from exc
            pairs = list(parsed.items()) if isinstance(parsed, dict) else []
        else:
            pairs = [item.partition(":")[::2] for item in raw.split(",") if item.strip()]
        keys = {str(k).strip(): str(v).strip() for k, v in pairs}
        if not pairs or any(not k or not v for k, v in keys.items()):
            raise ConfigurationError("XF_JWT_KEYS must be kid:secret pairs with non-empty parts")
        return keys

    @property
    def jwt_signing_key(self) -> tuple[str | None, str]:
        """``(kid, secret)`` new tokens are signed with; kid ``None`` = the legacy single key."""
        keys = self.jwt_key_map
        if not keys:
            return None, self.effective_jwt_secret
        kid = self.jwt_active_kid or (next(iter(keys)) if len(keys) == 1 else None)
        if kid is None or kid not in keys:
            raise ConfigurationError("XF_JWT_ACTIVE_KID must name one of XF_JWT_KEYS")
        return kid, keys[kid]

    @property
    def jwt_legacy_secret(self) -> str | None:
        """The key for kid-less tokens: ``XF_JWT_SECRET``, or the dev default without keys."""
        if self.jwt_secret:
            return self.jwt_secret
        return None if self.jwt_key_map else self.effective_jwt_secret

    def check_production_safety(self) -> None:
        """Refuse to start a production process with a missing or default secret (the PII
        keys: ``backend/core/startup.py`` adds them)."""
        for cidr in filter(None, (c.strip() for c in self.webhook_allowed_networks.split(","))):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ConfigurationError(f"XF_WEBHOOK_ALLOWED_NETWORKS: {exc}") from exc
        if self.env != "prod":
            return
        if self.jwt_key_map:
            self.jwt_signing_key  # noqa: B018 — raises when the active kid is not listed
            if any(len(k) < 32 or k == DEV_JWT_SECRET for k in self.jwt_key_map.values()):
                raise ConfigurationError("every XF_JWT_KEYS secret must be ≥ 32 real characters")
            if self.jwt_secret is None:
                return
        if not self.jwt_secret or self.jwt_secret == DEV_JWT_SECRET:
            raise ConfigurationError("XF_JWT_SECRET must be set to a real secret when XF_ENV=prod")
        if len(self.jwt_secret) < 32:
            raise ConfigurationError("XF_JWT_SECRET must be at least 32 characters in production")


@lru_cache
def get_settings() -> Settings:
    return Settings()
