"""Settings: one pydantic-settings root read from ``EQIAN_*`` variables and an optional env file."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _var_dir() -> Path:
    return Path(os.environ.get("EQIAN_VAR_DIR", "var"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EQIAN_",
        env_file=os.environ.get("EQIAN_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Field(default_factory=_var_dir)
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str = ""
    default_language: Literal["zh", "en"] = "zh"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    token_ttl_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    session_idle_minutes: int = Field(default=30, ge=5, le=24 * 60)
    session_absolute_minutes: int = Field(default=720, ge=30, le=7 * 24 * 60)
    # How long a worker reuses a resolved token before asking the database again (core.session_cache);
    # sessions ended through the application are dropped at once, 0 asks on every request.
    auth_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    # How often each worker delivers outbox events; 0 disables the in-process dispatcher
    # (then run `eqian outbox run`).
    outbox_poll_seconds: float = Field(default=2.0, ge=0, le=3600)
    # PostgreSQL connections each worker keeps open (up to 20 more are opened under bursts and
    # closed again). Raise it for workers that serve many concurrent requests, within the
    # server's max_connections (100 by default) across all workers and jobs.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    demo_password: str = "demo-pass-365"  # noqa: S105 - documented demo-only password
    # Incident classification rules; None means the lexicon shipped with the package.
    lexicon_path: Path | None = None
    # DingTalk custom robot of the command room (webhook URL with access_token, and its "加签" secret).
    dingtalk_webhook: str | None = None
    dingtalk_secret: str | None = None
    sms_backend: Literal["log"] = "log"
    # Attachments: files under var/attachments, or an S3-compatible store.
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    attachment_max_mb: int = Field(default=10, ge=1, le=100)
    # Origins allowed to open the WebSocket besides the server's own (comma-separated).
    allowed_origins: str = ""
    # Audit rows are kept at least this long (等保 asks for 180 days); eqian never purges them,
    # and the setting refuses less so a deployment cannot be configured below the requirement.
    audit_retention_days: int = Field(default=180, ge=180)
    # Rate limits (fixed windows, Redis-backed when redis_url is set). Login counts failed
    # attempts only; the others count every request of one session credential.
    rate_limit_enabled: bool = True
    # Per username it sits above the lockout (5 failures): it only stops hammering a locked account,
    # each attempt of which still costs an argon2 check.
    rate_limit_login_per_ip_per_minute: int = Field(default=60, ge=1)
    rate_limit_login_per_user_per_minute: int = Field(default=20, ge=1)
    # Incident intake by one officer or gateway token; the intake benchmark raises it.
    rate_limit_intake_per_minute: int = Field(default=3000, ge=1)
    rate_limit_write_per_minute: int = Field(default=300, ge=1)
    rate_limit_reveal_per_hour: int = Field(default=30, ge=1)
    # 401/403 answers per client address (anonymous) or credential; above it the caller gets 429
    # before any work, which also bounds the access.denied rows a flood can append to the audit chain.
    rate_limit_denied_per_minute: int = Field(default=600, ge=1)
    # Keep objects that live as long as the process or a WebSocket out of the cyclic garbage
    # collector's full passes (core/gcpolicy.py); the test suite turns it off, it builds many apps.
    gc_freeze: bool = True

    @field_validator("redis_url", "dingtalk_webhook", "dingtalk_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'eqian.db').as_posix()}"

    def resolved_secret_key(self) -> str:
        """The configured secret, else one generated once and kept under ``var/``.

        Kept on disk rather than regenerated so sessions survive a restart of a small deployment.
        """
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists() and (existing := path.read_text(encoding="utf-8").strip()):
            return existing
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Created 0600 from the start and renamed into place, so no reader ever sees it half
        # written or world-readable.
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key)
        os.replace(tmp, path)
        return key

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
