"""Configuration: required and invalid settings stop start-up naming the setting; `.env` is read
and the environment wins; the embedded default writes its random secrets once."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot import create_app
from bot.config import (
    DEFAULT_API_BASE,
    ConfigError,
    embedded_environment,
    load_settings,
    read_environment,
    settings_from_environment,
)

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ("WECHAT_TOKEN", "WECHAT_APPID", "WECHAT_SECRET", "HOUQIN_SECRET_KEY")
AES_KEY = base64.b64encode(bytes(range(32))).decode()[:43]
SETTING_NAMES = (*REQUIRED, "WECHAT_AES_KEY", "WECHAT_AES_KEY_PREVIOUS", "WECHAT_API_BASE", "DATABASE_URL",
                 "HOUQIN_TZ", "HOUQIN_INSTANCE", "HOUQIN_TEMPLATES", "REDIS_URL", "HOUQIN_PUBLIC_URL",
                 "WECHAT_ACCEPT_PLAINTEXT", "WECHAT_ALLOW_SHORT_TOKEN")


def valid_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {
        "WECHAT_TOKEN": "houqinConfigToken42",
        "WECHAT_APPID": "wx0123456789abcdef",
        "WECHAT_SECRET": "0123456789abcdef0123456789abcdef",
        "HOUQIN_SECRET_KEY": "a-long-enough-secret-key-for-tests",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'houqin.db'}",
        "HOUQIN_INSTANCE": str(tmp_path / "instance"),
    }
    env.update(changes)
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No Houqin setting in the environment, and a working directory without a `.env`."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


# -- valid settings ------------------------------------------------------------------------------
def test_valid_settings_and_defaults(tmp_path):
    settings = load_settings(valid_env(tmp_path))
    assert settings.wechat_token == "houqinConfigToken42"
    assert settings.wechat_appid == "wx0123456789abcdef"
    assert settings.secret_key == "a-long-enough-secret-key-for-tests"
    assert settings.wechat_api_base == DEFAULT_API_BASE
    assert settings.tz_name == "Asia/Shanghai" and str(settings.tz) == "Asia/Shanghai"
    assert settings.wechat_aes_key == "" and not settings.safe_mode


def test_optional_settings_are_read(tmp_path):
    settings = load_settings(valid_env(tmp_path, WECHAT_AES_KEY=AES_KEY, WECHAT_AES_KEY_PREVIOUS=AES_KEY,
                                       WECHAT_API_BASE="http://127.0.0.1:8900/", HOUQIN_TZ="Asia/Urumqi"))
    assert settings.safe_mode and settings.wechat_aes_key == AES_KEY
    assert settings.wechat_aes_key_previous == AES_KEY
    assert settings.wechat_api_base == "http://127.0.0.1:8900"  # the project appends /cgi-bin/...
    assert settings.tz_name == "Asia/Urumqi"


def test_database_defaults_to_a_sqlite_file_in_the_instance_folder(tmp_path):
    env = valid_env(tmp_path)
    del env["DATABASE_URL"]
    settings = load_settings(env)
    assert settings.database_url == f"sqlite:///{(tmp_path / 'instance' / 'houqin.db').resolve()}"


# -- missing and invalid settings --------------------------------------------------------------------
@pytest.mark.parametrize("name", REQUIRED)
@pytest.mark.parametrize("how", ["absent", "empty", "blank"])
def test_each_missing_required_setting_is_named(tmp_path, name, how):
    env = valid_env(tmp_path)
    if how == "absent":
        del env[name]
    else:
        env[name] = "" if how == "empty" else "   "
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


def test_all_missing_settings_are_named_at_once():
    with pytest.raises(ConfigError) as err:
        load_settings({})
    assert all(name in str(err.value) for name in REQUIRED)


@pytest.mark.parametrize(("name", "value"), [
    ("WECHAT_AES_KEY", "tooShort"),
    ("WECHAT_AES_KEY", AES_KEY + "A"),  # 44 characters
    ("WECHAT_AES_KEY", AES_KEY[:-1]),  # 42 characters
    ("WECHAT_AES_KEY", "!" * 43),  # right length, not base64
    ("WECHAT_AES_KEY_PREVIOUS", "tooShort"),
    ("HOUQIN_TZ", "Mars/Olympus_Mons"),
    ("HOUQIN_TZ", "../../etc/passwd"),
    ("HOUQIN_TZ", "UTC+8"),
    ("WECHAT_API_BASE", "api.weixin.qq.com"),
    ("WECHAT_API_BASE", "ftp://api.weixin.qq.com"),
    ("HOUQIN_SECRET_KEY", "short"),
    ("HOUQIN_SECRET_KEY", "x" * 15),
    ("WECHAT_TOKEN", "has spaces in it"),
    ("WECHAT_TOKEN", "ab"),
    ("WECHAT_TOKEN", "fifteenCharsAbc"),  # WeChat allows 3-32; a short one is brute-forced offline
    ("WECHAT_ALLOW_SHORT_TOKEN", "maybe"),
    ("DATABASE_URL", "houqin.db"),
    ("HOUQIN_TEMPLATES", "[1, 2]"),
    ("HOUQIN_TEMPLATES", "{not json"),
    ("HOUQIN_PUSH_CONCURRENCY", "many"),
])
def test_each_invalid_setting_is_named(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings(valid_env(tmp_path, **{name: value}))


def test_previous_aes_key_without_a_current_one_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="WECHAT_AES_KEY_PREVIOUS"):
        load_settings(valid_env(tmp_path, WECHAT_AES_KEY_PREVIOUS=AES_KEY))


def test_a_short_wechat_token_is_refused_in_chinese_and_english_unless_allowed(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_settings(valid_env(tmp_path, WECHAT_TOKEN="abc123"))
    assert "WECHAT_TOKEN 太短（6 个字符）：至少要 16 个字母或数字" in str(refused.value)
    assert "WECHAT_TOKEN is too short (6 characters)" in str(refused.value)
    assert "WECHAT_ALLOW_SHORT_TOKEN=1" in str(refused.value)
    assert load_settings(valid_env(tmp_path, WECHAT_TOKEN="abc123", WECHAT_ALLOW_SHORT_TOKEN="1")).wechat_token == "abc123"
    assert load_settings(valid_env(tmp_path, WECHAT_TOKEN="x" * 16)).wechat_token == "x" * 16


def test_a_sixteen_character_secret_key_is_enough(tmp_path):
    assert load_settings(valid_env(tmp_path, HOUQIN_SECRET_KEY="x" * 16)).secret_key == "x" * 16


# -- .env ----------------------------------------------------------------------------------------
def write_dotenv(path: Path, values: dict[str, str]) -> Path:
    path.write_text("# Houqin settings\n" + "".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    dotenv = write_dotenv(tmp_path / ".env",
                          valid_env(tmp_path, WECHAT_TOKEN="fromDotenvToken42", HOUQIN_TZ="Asia/Tokyo"))
    merged = read_environment({"WECHAT_TOKEN": "fromEnvironmentToken42"}, dotenv=dotenv)
    settings = load_settings(merged)
    assert settings.wechat_token == "fromEnvironmentToken42"  # the environment wins
    assert settings.tz_name == "Asia/Tokyo"  # the rest comes from .env
    assert settings.wechat_appid == "wx0123456789abcdef"


def test_dotenv_in_the_working_directory_is_read_by_default(clean_env, tmp_path):
    write_dotenv(tmp_path / ".env", valid_env(tmp_path, WECHAT_TOKEN="fromDotenvToken42", WECHAT_APPID="wxFromDotenv"))
    clean_env.setenv("WECHAT_APPID", "wxFromEnvironment")
    settings = settings_from_environment()
    assert settings.wechat_token == "fromDotenvToken42"
    assert settings.wechat_appid == "wxFromEnvironment"


def test_missing_dotenv_is_fine_when_the_environment_has_everything(clean_env, tmp_path):
    for name, value in valid_env(tmp_path).items():
        clean_env.setenv(name, value)
    assert settings_from_environment().wechat_token == "houqinConfigToken42"


# -- the WSGI app ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REQUIRED)
def test_create_app_without_a_setting_fails_naming_it(clean_env, tmp_path, name):
    for key, value in valid_env(tmp_path).items():
        if key != name:
            clean_env.setenv(key, value)
    with pytest.raises(ConfigError, match=name):
        create_app()


def test_create_app_with_an_invalid_setting_fails_naming_it(clean_env, tmp_path):
    for key, value in valid_env(tmp_path, HOUQIN_TZ="Nowhere/Special").items():
        clean_env.setenv(key, value)
    with pytest.raises(ConfigError, match="HOUQIN_TZ"):
        create_app()


def test_create_app_from_the_environment(clean_env, tmp_path):
    for key, value in valid_env(tmp_path).items():
        clean_env.setenv(key, value)
    app = create_app()
    assert app.config["SECRET_KEY"] == "a-long-enough-secret-key-for-tests"
    res = app.test_client().get("/healthz")
    assert res.status_code == 200 and res.get_json()["status"] == "ok"
    app.extensions["houqin"].db_engine.dispose()


def test_wsgi_entry_point_stops_with_a_message_naming_the_setting(tmp_path):
    """What `gunicorn 'bot:create_app()'` does at start-up, in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(valid_env(tmp_path))
    del env["HOUQIN_SECRET_KEY"]
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-c", "import bot; bot.create_app()"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and "HOUQIN_SECRET_KEY" in result.stderr


# -- the embedded default --------------------------------------------------------------------------
def test_embedded_environment_writes_random_secrets_once_and_reuses_them(tmp_path):
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first = embedded_environment(first_dir)
    path = first_dir / "houqin.env"
    content = path.read_text(encoding="utf-8")

    again = embedded_environment(first_dir)
    other = embedded_environment(second_dir)

    assert again == first and path.read_text(encoding="utf-8") == content
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # secrets readable by the owner only
    for name in ("WECHAT_TOKEN", "WECHAT_SECRET", "WECHAT_AES_KEY", "HOUQIN_SECRET_KEY"):
        assert first[name] and first[name] != other[name], name  # random, not a hard-coded default
    settings = load_settings({**first, "HOUQIN_INSTANCE": str(first_dir)})
    assert settings.safe_mode and len(settings.secret_key) >= 16
    assert len(settings.wechat_token) >= 16  # the embedded instance passes its own token rule


def test_embedded_settings_fill_gaps_and_the_environment_wins(clean_env, tmp_path):
    instance = tmp_path / "instance"
    clean_env.setenv("HOUQIN_INSTANCE", str(instance))
    clean_env.setenv("WECHAT_TOKEN", "chosenByOperator")

    first = settings_from_environment(embedded=True)
    second = settings_from_environment(embedded=True)

    assert first.wechat_token == "chosenByOperator"
    assert first.secret_key == second.secret_key and first.wechat_secret == second.wechat_secret
    assert first.secret_key == embedded_environment(instance)["HOUQIN_SECRET_KEY"]
    assert first.database_url == f"sqlite:///{instance.resolve() / 'houqin.db'}"


def test_a_blank_aes_key_means_plaintext_mode_for_the_embedded_default(clean_env, tmp_path):
    """`WECHAT_AES_KEY=` (set, empty) is the operator's choice of plaintext mode: `houqin serve` must
    not fill it from the instance file, as it fills the other blanks."""
    instance = tmp_path / "instance"
    clean_env.setenv("HOUQIN_INSTANCE", str(instance))
    assert settings_from_environment(embedded=True).safe_mode  # unset: the instance file's key
    clean_env.setenv("WECHAT_AES_KEY", "")
    clean_env.setenv("WECHAT_SECRET", "")
    plain = settings_from_environment(embedded=True)
    assert plain.wechat_aes_key == "" and not plain.safe_mode
    assert plain.wechat_secret == embedded_environment(instance)["WECHAT_SECRET"]  # other blanks are filled


@pytest.mark.parametrize(("value", "accepted"), [("", False), ("0", False), ("1", True), ("true", True)])
def test_accept_plaintext_is_read(tmp_path, value, accepted):
    settings = load_settings(valid_env(tmp_path, WECHAT_AES_KEY=AES_KEY, WECHAT_ACCEPT_PLAINTEXT=value))
    assert settings.accept_plaintext is accepted


def test_accept_plaintext_must_be_a_flag(tmp_path):
    with pytest.raises(ConfigError, match="WECHAT_ACCEPT_PLAINTEXT"):
        load_settings(valid_env(tmp_path, WECHAT_ACCEPT_PLAINTEXT="maybe"))


def test_strict_settings_do_not_fall_back_to_the_embedded_file(clean_env, tmp_path):
    instance = tmp_path / "instance"
    embedded_environment(instance)
    clean_env.setenv("HOUQIN_INSTANCE", str(instance))
    with pytest.raises(ConfigError, match="WECHAT_TOKEN"):
        settings_from_environment()


# -- no school here: only `serve` and `demo` create one ---------------------------------------------
NO_SCHOOL_COMMANDS = [
    ["worker"], ["scheduler"], ["codes"], ["db", "upgrade"], ["outbox"], ["spool"], ["setting"], ["jobs", "list"],
    ["export", "repairs", "--month", "2026-11", "--out", "r.xlsx"], ["chat", "--as", "张丽"],
    ["people", "import", "people.csv"], ["console-password", "张丽", "--password", "a-good-password"],
]


def _houqin(*args: str) -> Any:
    from click.testing import CliRunner

    from bot.cli import main

    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("args", NO_SCHOOL_COMMANDS, ids=" ".join)
def test_a_command_finding_no_school_says_where_it_looked_and_creates_nothing(clean_env, tmp_path, args):
    instance = tmp_path / "instance"
    clean_env.setenv("HOUQIN_INSTANCE", str(instance))
    (tmp_path / "people.csv").write_text("姓名,角色\n张丽,教师\n", encoding="utf-8")
    result = _houqin(*args)
    assert result.exit_code == 1, result.output
    assert "这里没有 Houqin 的学校" in result.output and "本命令没有创建任何文件夹或文件" in result.output
    assert str(tmp_path / ".env") in result.output and f"{instance} 中没有 houqin.env" in result.output
    assert "houqin serve" in result.output and "DATABASE_URL" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv"]  # no instance/, no database, no export


def test_a_configured_environment_needs_no_instance_folder(clean_env, tmp_path):
    for name, value in valid_env(tmp_path).items():
        clean_env.setenv(name, value)
    upgraded = _houqin("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert _houqin("codes", "--json").output.strip() == "[]"
    assert not (tmp_path / "instance").exists() and (tmp_path / "houqin.db").is_file()


def test_a_configured_environment_without_database_url_needs_the_instance_database(clean_env, tmp_path):
    env = valid_env(tmp_path)
    del env["DATABASE_URL"]
    for name, value in env.items():
        clean_env.setenv(name, value)
    refused = _houqin("db", "upgrade")
    assert refused.exit_code == 1
    database = tmp_path / "instance" / "houqin.db"
    assert f"没有 DATABASE_URL，默认数据库 {database} 不存在" in refused.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    made = _houqin("demo")  # `houqin demo` may create the instance's database
    assert made.exit_code == 0, made.output
    assert database.is_file() and "张丽" in _houqin("codes", "--json").output


def test_an_existing_embedded_instance_is_found(clean_env, tmp_path):
    clean_env.setenv("HOUQIN_INSTANCE", str(tmp_path / "instance"))
    made = _houqin("demo")
    assert made.exit_code == 0, made.output
    secrets_file = (tmp_path / "instance" / "houqin.env").read_text(encoding="utf-8")
    listed = _houqin("codes", "--json")
    assert listed.exit_code == 0 and "张丽" in listed.output
    assert (tmp_path / "instance" / "houqin.env").read_text(encoding="utf-8") == secrets_file  # the same school


def test_db_pool_bounds_a_processes_postgresql_connections(tmp_path):
    """HOUQIN_DB_POOL: every school a process serves shares one pool of at most that many connections
    (bench/county.py: 20 schools x 4 workers within max_connections); unset, SQLAlchemy's 10 + 20."""
    from bot.services import Services

    url = "postgresql://127.0.0.1:5432/test"
    bounded = load_settings(valid_env(tmp_path, DATABASE_URL=url, HOUQIN_DB_POOL="6"))
    assert bounded.db_pool == 6
    pool = Services.from_settings(bounded).db_engine.pool
    assert (pool.size(), pool._max_overflow) == (6, 0)  # type: ignore[attr-defined]
    default = Services.from_settings(load_settings(valid_env(tmp_path, DATABASE_URL=url))).db_engine.pool
    assert (default.size(), default._max_overflow) == (10, 20)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="HOUQIN_DB_POOL"):
        load_settings(valid_env(tmp_path, DATABASE_URL=url, HOUQIN_DB_POOL="许多"))
