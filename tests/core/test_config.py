"""Settings: EQIAN_* variables, env files, defaults under var/, the generated secret key, validation."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from eqian.core.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EQIAN_* variable from the caller's shell, and a working directory without a .env file."""
    for name in list(os.environ):
        if name.startswith("EQIAN_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_defaults() -> None:
    s = Settings()
    assert s.env == "development"
    assert s.var_dir == Path("var")
    assert s.resolved_database_url() == "sqlite+aiosqlite:///var/eqian.db"
    assert s.is_sqlite
    assert s.redis_url is None
    assert s.default_language == "zh"
    assert s.log_level == "INFO"
    assert (s.token_ttl_minutes, s.session_idle_minutes, s.session_absolute_minutes) == (480, 30, 720)
    assert (s.login_max_failures, s.login_lock_minutes) == (5, 15)
    assert s.demo_password == "demo-pass-365"


def test_the_default_database_is_a_sqlite_file_under_var_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = Settings(var_dir=tmp_path / "data")
    assert s.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/data/eqian.db"
    monkeypatch.setenv("EQIAN_VAR_DIR", str(tmp_path / "elsewhere"))
    s = Settings()
    assert s.var_dir == tmp_path / "elsewhere"
    assert s.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/elsewhere/eqian.db"
    assert s.is_sqlite


def test_settings_from_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pg = "postgresql+asyncpg://eqian:pw@db.internal:5432/eqian"
    for name, value in {
        "EQIAN_ENV": "production",
        "EQIAN_DATABASE_URL": pg,
        "EQIAN_REDIS_URL": "redis://127.0.0.1:6379/0",
        "EQIAN_SECRET_KEY": "from-env",
        "EQIAN_DEFAULT_LANGUAGE": "en",
        "EQIAN_LOG_LEVEL": "DEBUG",
        "EQIAN_TOKEN_TTL_MINUTES": "60",
        "EQIAN_SESSION_IDLE_MINUTES": "15",
        "EQIAN_VAR_DIR": str(tmp_path / "v"),
        "EQIAN_DEMO_PASSWORD": "Other-demo-1",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.env == "production"
    assert s.resolved_database_url() == pg
    assert not s.is_sqlite
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.resolved_secret_key() == "from-env"
    assert (s.default_language, s.log_level) == ("en", "DEBUG")
    assert (s.token_ttl_minutes, s.session_idle_minutes) == (60, 15)
    assert s.var_dir == tmp_path / "v"
    assert s.demo_password == "Other-demo-1"
    assert not (tmp_path / "v").exists()  # an explicit secret writes nothing


def test_unrelated_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQIAN_TEST_PG_URL", "postgresql+asyncpg://x/y")
    monkeypatch.setenv("EQIAN_NO_SUCH_SETTING", "1")
    assert Settings().resolved_database_url() == "sqlite+aiosqlite:///var/eqian.db"


def test_settings_from_an_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "eqian.env"
    env_file.write_text(
        "# production\n"
        "EQIAN_DATABASE_URL=postgresql+asyncpg://eqian@10.0.0.5/eqian\n"
        "EQIAN_DEFAULT_LANGUAGE=en\n"
        "EQIAN_REDIS_URL=\n",
        encoding="utf-8",
    )
    s = Settings(_env_file=env_file)
    assert s.resolved_database_url() == "postgresql+asyncpg://eqian@10.0.0.5/eqian"
    assert s.default_language == "en"
    assert s.redis_url is None
    # A real variable beats the file.
    monkeypatch.setenv("EQIAN_DEFAULT_LANGUAGE", "zh")
    assert Settings(_env_file=env_file).default_language == "zh"


def test_a_dot_env_in_the_working_directory_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text("EQIAN_LOG_LEVEL=WARNING\n", encoding="utf-8")
    assert Settings().log_level == "WARNING"


def test_eqian_env_file_names_the_file_for_a_new_process(tmp_path: Path) -> None:
    # EQIAN_ENV_FILE is read when eqian.core.config is imported, so it is set before the process starts.
    env_file = tmp_path / "deploy.env"
    env_file.write_text("EQIAN_DATABASE_URL=postgresql+asyncpg://eqian@10.0.0.9/eqian\n", encoding="utf-8")
    code = (
        "import json; from eqian.core.config import Settings; s = Settings(); "
        "print(json.dumps([s.resolved_database_url(), s.log_level]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQIAN_")}
    env |= {"EQIAN_ENV_FILE": str(env_file), "EQIAN_LOG_LEVEL": "ERROR"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == ["postgresql+asyncpg://eqian@10.0.0.9/eqian", "ERROR"]


def test_the_secret_key_is_generated_once_private_and_stable(tmp_path: Path) -> None:
    var_dir = tmp_path / "not-yet"
    first = Settings(var_dir=var_dir).resolved_secret_key()
    path = var_dir / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 43  # at least 256 bits, URL-safe base64
    assert path.read_text(encoding="utf-8").strip() == first
    assert Settings(var_dir=var_dir).resolved_secret_key() == first  # a restart keeps it
    assert Settings(var_dir=tmp_path / "other").resolved_secret_key() != first


def test_an_explicit_secret_wins_over_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    generated = Settings(var_dir=tmp_path).resolved_secret_key()
    assert Settings(var_dir=tmp_path, secret_key="explicit").resolved_secret_key() == "explicit"
    monkeypatch.setenv("EQIAN_SECRET_KEY", "from-env")
    assert Settings(var_dir=tmp_path).resolved_secret_key() == "from-env"
    assert (tmp_path / "secret_key").read_text(encoding="utf-8").strip() == generated  # left alone


def test_an_explicit_secret_creates_no_file(tmp_path: Path) -> None:
    Settings(var_dir=tmp_path / "v", secret_key="explicit").resolved_secret_key()
    assert not (tmp_path / "v").exists()


def test_an_empty_secret_file_never_gives_an_empty_secret(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("", encoding="utf-8")
    assert len(Settings(var_dir=tmp_path).resolved_secret_key()) >= 43


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("EQIAN_LOG_LEVEL", "LOUD", "log_level"),
        ("EQIAN_TOKEN_TTL_MINUTES", "1", "token_ttl_minutes"),
        ("EQIAN_TOKEN_TTL_MINUTES", "forever", "token_ttl_minutes"),
        ("EQIAN_SESSION_IDLE_MINUTES", "0", "session_idle_minutes"),
        ("EQIAN_SESSION_ABSOLUTE_MINUTES", "29", "session_absolute_minutes"),
        ("EQIAN_LOGIN_MAX_FAILURES", "0", "login_max_failures"),
        ("EQIAN_DEFAULT_LANGUAGE", "fr", "default_language"),
        ("EQIAN_ENV", "staging", "env"),
    ],
)
def test_an_invalid_value_is_refused_naming_its_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]
    assert field in str(caught.value)


def test_an_empty_redis_url_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQIAN_REDIS_URL", "")
    assert Settings().redis_url is None
    monkeypatch.setenv("EQIAN_REDIS_URL", "redis://cache:6379/1")
    assert Settings().redis_url == "redis://cache:6379/1"
    assert Settings(redis_url="").redis_url is None
