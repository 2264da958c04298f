"""No password, key or token Sentinel is given or makes turns up where it
writes or in what it answers: a `make run`, used through the API and in the
browser, then its state database, its Redis's files, its logs and every answer
searched for each of them. (tests/conftest.py checks every test-client answer
of the other tests the same way.)"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_make_run import DevServer

from sentinel.dev import sandbox

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BOB_PASSWORD = "bob-has-a-long-password"
AGENT_KEY = "agent-key-for-the-secrets-test"


@pytest.fixture
def state_dir():
    path = Path(tempfile.mkdtemp(prefix="sentinel-secrets-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    sandbox.Cluster(path / "sandbox").stop("immediate")
    shutil.rmtree(path, ignore_errors=True)


class Answers:
    """Calls to the service over HTTP; every answer (headers and body) is kept."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.kept = []

    def keep(self, where, headers, body):
        self.kept.append((where, f"{headers}".encode() + body))

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers or {}
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, answer_headers, content = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, content = error.code, error.headers, error.read()
        self.keep(f"{method} {path}", answer_headers, content)
        return status, content


def sentinel_command(env, *args, stdin=""):
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def use_the_api(answers, admin_password, token):
    """Sign in, call every GET route the description lists (with the session,
    then with the token and the agent key), fail to sign in, sign out."""
    status, body = answers.call("POST", "/login", {"username": "admin", "password": admin_password})
    assert status == 200, body
    session = json.loads(body)["session"]
    with_session = {"X-Session": session}
    status, body = answers.call("GET", "/openapi.json", headers=with_session)
    paths = [
        path
        for path, operations in json.loads(body)["paths"].items()
        if "get" in operations and "{" not in path and path != "/logout"
    ]
    assert len(paths) > 20
    for path in paths:
        answers.call("GET", path, headers=with_session)
        answers.call("GET", f"{path}?key={AGENT_KEY}", headers={"Authorization": f"Bearer {token}"})
    # Refused sign-ins: the right password of someone else, a malformed name.
    assert answers.call("POST", "/login", {"username": "bob", "password": admin_password})[0] == 404
    refused = answers.call("POST", "/login", {"username": "Bob!", "password": BOB_PASSWORD})
    assert refused[0] == 406
    assert answers.call("GET", "/logout", headers=with_session)[0] == 200
    return session


def use_the_ui(browser, base_url, answers):
    """Sign in as bob, open every page of the navigation, sign out."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(15_000)

    def keep(answer):
        try:
            body = answer.body()
        except Exception:  # redirects have none
            body = b""
        answers.keep(f"browser {answer.url}", answer.all_headers(), body)

    page.on("response", keep)
    try:
        page.goto("/ui/login")
        page.get_by_label("Username").fill("bob")
        page.get_by_label("Password").fill(BOB_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.locator("#signed-in-as").wait_for()
        links = page.locator("header nav a").evaluate_all("links => links.map(a => a.href)")
        assert len(links) >= 5
        for link in links:
            page.goto(link)
            page.wait_for_load_state("networkidle")
        page.locator("#sign-out").click()
        page.get_by_text("Signed out.").wait_for()
    finally:
        context.close()


def test_no_secret_is_written_logged_or_answered(state_dir, browser):
    port = sandbox.free_port()
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_BIND": f"127.0.0.1:{port}",
        # Its own Redis there, behind a password.
        "SENTINEL_REDIS_URL": f"redis://127.0.0.1:{sandbox.free_port()}/0",
        "SENTINEL_AGENT_KEY": AGENT_KEY,
        # Everything said, every request logged.
        "SENTINEL_LOG_LEVEL": "DEBUG",
        "SENTINEL_ACCESS_LOG": "true",
    }
    run = DevServer(env)
    answers = Answers(f"http://127.0.0.1:{port}")
    try:
        run.wait_for("press Ctrl-C to stop")
        # Generated, kept in a file, and said where, not what.
        password_file = state_dir / "admin_password"
        assert f"credentials: user admin, password in {password_file}" in run.text
        admin_password = password_file.read_text().strip()
        sentinel_command(env, "users", "create", "bob", "--password-stdin", stdin=BOB_PASSWORD)
        token = sentinel_command(env, "tokens", "create", "bob", "ci")
        session = use_the_api(answers, admin_password, token)
        use_the_ui(browser, answers.base_url, answers)
    finally:
        run.ctrl_c()

    secrets = {
        "admin's password": admin_password,
        "bob's password": BOB_PASSWORD,
        "the sandbox superuser's password": (state_dir / "sandbox" / "password").read_text(),
        "the Redis password": (state_dir / "redis" / "password").read_text(),
        "the agent key": AGENT_KEY,
        "the API token": token,
        "the secret key": (state_dir / "secret_key").read_text(),
        "the pool's key": (state_dir / "pool.key").read_text(),
    }
    secrets = {name: value.strip().encode() for name, value in secrets.items()}
    # Where Sentinel writes (its key files, made to hold them, left out).
    written = {"make run's output": run.text.encode()}
    for path in state_dir.glob("sentinel.db*"):
        written[path.name] = path.read_bytes()
    for path in (state_dir / "redis").rglob("*"):
        if path.is_file() and path.name not in ("password", "redis.conf"):
            written[f"redis/{path.name}"] = path.read_bytes()
    written["postgres.log"] = (state_dir / "sandbox" / "postgres.log").read_bytes()
    assert "sentinel.db" in written and any(name.startswith("redis/") for name in written)

    found = [
        f"{name} in {place}"
        for name, secret in secrets.items()
        for place, content in written.items()
        if secret in content
    ]
    found += [
        f"{name} in the answer to {where}"
        for name, secret in secrets.items()
        for where, content in answers.kept
        if secret in content
    ]
    # A session id is answered once, by POST /login, and kept nowhere.
    found += [
        f"the session id in {place}"
        for place, content in written.items()
        if session.encode() in content
    ]
    assert len(answers.kept) > 50
    assert found == []


# -- settings, as check-config prints them and as errors name them ----------------------


def test_check_config_hides_a_password_given_in_a_url_query(sentinel):
    result = sentinel(
        "check-config",
        extra_env={
            "SENTINEL_PG_DSN": "postgresql://postgres@127.0.0.1/postgres?password=query-secret",
            "SENTINEL_REDIS_URL": "unix:///run/redis.sock?db=0&password=socket-secret",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "query-secret" not in result.stdout and "socket-secret" not in result.stdout
    assert "SENTINEL_REDIS_URL=unix:///run/redis.sock?db=0&password=***" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "http://:url-secret@127.0.0.1:6379/0"),
        ("REDIS_URL", "default:url-secret@127.0.0.1:6379"),
        ("DATABASE", "mysql://sentinel:url-secret@127.0.0.1/sentinel"),
        ("PG_DSN", "postgresql://postgres:url%zzsecret@127.0.0.1/postgres"),
        ("PG_DSN", "host=127.0.0.1 password=url secret"),
    ],
    ids=["redis scheme", "redis without scheme", "database scheme", "bad escape", "unquoted"],
)
def test_a_refused_setting_is_named_without_its_password(sentinel, name, value):
    result = sentinel("check-config", extra_env={f"SENTINEL_{name}": value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"sentinel: SENTINEL_{name}: ")
    assert "secret" not in result.stderr, result.stderr
