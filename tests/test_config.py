"""Configuration: file < environment, and one clear line for a bad setting."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel import config

ROOT = Path(__file__).resolve().parent.parent


def load(tmp_path, env=None, file_text=None):
    path = tmp_path / "sentinel.conf"
    if file_text is not None:
        path.write_text(file_text)
    environ = {"SENTINEL_CONFIG": str(path), "SENTINEL_STATE_DIR": str(tmp_path / "state")}
    return config.load({**environ, **(env or {})})


def test_defaults_need_no_file(tmp_path):
    settings = load(tmp_path)
    assert settings["bind"] == "127.0.0.1:2345"
    assert settings["redis_url"] == "redis://127.0.0.1:6379/0"
    assert settings["database"] == f"sqlite:///{tmp_path / 'state' / 'sentinel.db'}"
    assert settings["session_timeout"] == 3600


def test_the_environment_overrides_the_file(tmp_path):
    settings = load(
        tmp_path,
        env={"SENTINEL_BIND": "127.0.0.1:7000"},
        file_text='bind = "127.0.0.1:6000"\nsession_timeout = 900\n',
    )
    assert settings["bind"] == "127.0.0.1:7000"
    assert settings["session_timeout"] == 900


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SENTINEL_BIND": "2345"}, "SENTINEL_BIND: expected HOST:PORT, got '2345'"),
        ({"SENTINEL_BIND": "127.0.0.1:99999"}, "SENTINEL_BIND: must be between 1 and 65535"),
        ({"SENTINEL_SESSION_TIMEOUT": "soon"}, "SENTINEL_SESSION_TIMEOUT: expected an integer"),
        ({"SENTINEL_SESSION_TIMEOUT": "5"}, "SENTINEL_SESSION_TIMEOUT: must be between 60"),
        ({"SENTINEL_PG_DSN": "host=x port"}, "SENTINEL_PG_DSN: invalid connection string"),
        ({"SENTINEL_REDIS_URL": "http://x"}, "SENTINEL_REDIS_URL: expected a redis://"),
        ({"SENTINEL_DATABASE": "mysql://x/y"}, "SENTINEL_DATABASE: expected sqlite:///PATH"),
        ({"SENTINEL_COOKIE_SECURE": "perhaps"}, "SENTINEL_COOKIE_SECURE: expected true or false"),
        ({"SENTINEL_LOG_LEVEL": "LOUD"}, "SENTINEL_LOG_LEVEL: expected DEBUG"),
    ],
)
def test_a_bad_value_names_its_setting(tmp_path, env, message):
    with pytest.raises(config.ConfigError) as caught:
        load(tmp_path, env=env)
    assert message in str(caught.value)


def test_a_bad_value_in_the_file_names_the_file(tmp_path):
    with pytest.raises(config.ConfigError) as caught:
        load(tmp_path, file_text="pg_pool_size = 50\n")
    assert str(caught.value).startswith(f"pg_pool_size in {tmp_path / 'sentinel.conf'}: ")


def test_an_unknown_setting_in_the_file_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match="unknown setting 'pg_dns'"):
        load(tmp_path, file_text='pg_dns = "host=x"\n')


def test_a_file_that_is_not_toml_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match="is not valid TOML"):
        load(tmp_path, file_text="bind = \n")


def test_the_generated_secret_key_is_private_and_stable(tmp_path):
    first = load(tmp_path)["secret_key"]
    second = load(tmp_path)["secret_key"]
    key_file = tmp_path / "state" / "secret_key"
    assert first == second and len(first) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def run(command, env):
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, setting",
    [
        ({"SENTINEL_BIND": "nowhere"}, "SENTINEL_BIND"),
        ({"SENTINEL_LOGIN_MAX_FAILURES": "0"}, "SENTINEL_LOGIN_MAX_FAILURES"),
        ({"SENTINEL_DATABASE": "postgresql://nobody@127.0.0.1:1/none"}, "state database"),
    ],
)
def test_the_service_refuses_to_start_with_one_line(tmp_path, env, setting):
    result = run(
        [sys.executable, "-m", "sentinel", "serve"],
        {"SENTINEL_STATE_DIR": str(tmp_path), **env},
    )
    assert result.returncode != 0
    sentinel_lines = [line for line in result.stderr.splitlines() if "sentinel:" in line]
    assert len(sentinel_lines) == 1, result.stderr
    assert setting in sentinel_lines[0]
    assert "Traceback" not in result.stderr


def test_the_command_line_refuses_a_bad_config_with_one_line(tmp_path):
    result = run(
        [sys.executable, "-m", "sentinel", "users", "list"],
        {"SENTINEL_STATE_DIR": str(tmp_path), "SENTINEL_CONNECT_TIMEOUT": "600"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "sentinel: SENTINEL_CONNECT_TIMEOUT: must be between 1 and 60, got 600"
    )
