"""Fixtures: a real PostgreSQL 15 cluster and a real Redis for the whole session,
a fresh state database per test, and small factories for users and sessions."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import argon2
import psycopg2.extensions
import pytest
from flask import request
from playwright.sync_api import expect, sync_playwright

from sentinel import config, contract, create_app, state
from sentinel.auth import accounts, sessions
from sentinel.dev import sandbox

ARTIFACTS = Path(__file__).parent / "artifacts"


def pytest_configure(config):
    # Tests must not read the machine's configuration or a developer's env
    # (but `make fuzz` says how many examples the fuzz runs send).
    kept = ("SENTINEL_PG_BINDIR", "SENTINEL_FUZZ_EXAMPLES")
    for name in list(os.environ):
        if name.startswith("SENTINEL_") and name not in kept:
            del os.environ[name]
    os.environ["SENTINEL_CONFIG"] = "/nonexistent/sentinel.conf"
    # Users made and signed in through apps built in the test processes hash
    # with argon2's cheapest parameters: the real ones (64 MiB, 3 passes) took
    # a second a sign-in, hundreds of times over. Services and commands the
    # tests start hash as installed; test_accounts checks those parameters.
    accounts.hasher = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)


# The modules that take a minute or more each (a container to provision, a
# whole `make run`, a fuzz campaign), started first: run last, they left one
# of the two xdist workers busy for minutes after the other had finished.
LONGEST_FIRST = (
    "test_system.py",
    "test_fuzz_plugins.py",
    "test_secrets.py",
    "test_fuzz_pool.py",
    "test_make_run.py",
    "test_fuzz_ui.py",
    "test_fuzz.py",
    "test_pool_ui.py",
)


def pytest_collection_modifyitems(items):
    """Run the longest modules first (`make test` keeps this collection order
    with --no-loadscope-reorder), the others in their usual order."""

    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether their test failed (browser tests keep evidence).
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.test_failed = report.failed


@pytest.fixture(scope="session")
def pg_cluster():
    with sandbox.temporary_cluster("sentinel-pg-") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def initialized_cluster():
    """A stopped cluster, made by initdb once, that each own_cluster copies."""
    with sandbox.temporary_cluster("sentinel-own-template-") as cluster:
        cluster.stop()
        yield cluster


@pytest.fixture
def own_cluster(initialized_cluster):
    """A cluster of the test's own, for tests that stop or break it: a copy of
    a stopped one, started (a fifth of initdb's time)."""
    base = Path(tempfile.mkdtemp(prefix="sentinel-own-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    copy = base / "cluster"
    subprocess.run(["cp", "-a", initialized_cluster.base, copy], check=True)
    # The template's log, port and command line are not the copy's.
    for stale in ("postgres.log", "data/sandbox_port.conf", "data/postmaster.opts"):
        (copy / stale).unlink(missing_ok=True)
    conf = copy / "data" / "postgresql.conf"
    conf.write_text(conf.read_text().replace(str(initialized_cluster.sock), str(copy / "sock")))
    cluster = sandbox.Cluster(copy, throwaway=True)
    try:
        yield cluster.start()
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    server = sandbox.RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    yield redis_server.url
    if sandbox.answers(redis_server.url):
        import redis

        redis.Redis.from_url(redis_server.url).flushall()


@pytest.fixture(scope="session")
def migrated_sqlite_state(tmp_path_factory):
    """A SQLite state with every migration applied, which each test copies:
    migrating from nothing was a third of the time create_app() took."""
    directory = tmp_path_factory.mktemp("migrated-state")
    db = state.bind(f"sqlite:///{directory / 'sentinel.db'}")
    state.migrate(db, directory)
    db.close_all()
    return directory / "sentinel.db"


@pytest.fixture
def sqlite_state(tmp_path, migrated_sqlite_state):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700, exist_ok=True)
    shutil.copyfile(migrated_sqlite_state, directory / "sentinel.db")
    return f"sqlite:///{directory / 'sentinel.db'}"


@pytest.fixture(scope="session")
def migrated_postgres_template(pg_cluster, tmp_path_factory):
    """A PostgreSQL state database with every migration applied, which each
    test clones: migrating an empty one took half of create_app() there."""
    name = "state_migrated_template"
    pg_cluster.execute(f'CREATE DATABASE "{name}"')
    db = state.bind(pg_cluster.url(name))
    state.migrate(db, tmp_path_factory.mktemp("template-lock"))
    db.close_all()
    # Marked a template, so that what lists the cluster's databases skips it.
    pg_cluster.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE true')
    return name


def temporary_state_database(pg_cluster, template=None):
    """A state database of its own in the session cluster (a clone of
    `template`, else empty), dropped afterwards."""
    name = f"state_{uuid.uuid4().hex[:12]}"
    clone = f' TEMPLATE "{template}"' if template else ""
    pg_cluster.execute(f'CREATE DATABASE "{name}"{clone}')
    yield pg_cluster.url(name)
    if state.database.obj is not None:
        state.database.close_all()
    pg_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_state(pg_cluster, migrated_postgres_template):
    """A migrated state database of its own in the session cluster."""
    yield from temporary_state_database(pg_cluster, migrated_postgres_template)


@pytest.fixture
def empty_postgres_state(pg_cluster):
    """A new, empty state database, for the tests of migration at start."""
    yield from temporary_state_database(pg_cluster)


@pytest.fixture
def state_url(sqlite_state):
    """Where the app keeps its state; core test modules run with both backends."""
    return sqlite_state


@pytest.fixture
def settings(tmp_path, pg_cluster, redis_url, state_url):
    return {
        "pg_dsn": pg_cluster.dsn(),
        "pg_data": str(pg_cluster.data),
        "redis_url": redis_url,
        "database": state_url,
        "state_dir": str(tmp_path / "state"),
        "hostname": "sentinel.test",
    }


# An API token as sessions.create_token() makes them: no answer ever holds one.
API_TOKEN = re.compile(rb"snt_[A-Za-z0-9_-]{43}")


def password_in(url_or_dsn):
    if "://" in url_or_dsn:
        password = urlsplit(url_or_dsn).password
        return unquote(password) if password else None
    return psycopg2.extensions.parse_dsn(url_or_dsn).get("password") if url_or_dsn else None


def secrets_of(settings):
    """The secrets an app is given: its keys and the passwords of the
    connection strings it is configured with."""
    found = {settings[name] for name in config.SECRETS}
    found |= {password_in(settings[name]) for name in ("pg_dsn", "redis_url", "database")}
    return {secret for secret in found if secret}


def leaks(answers, secrets):
    """'METHOD /path: what' for every answer holding a secret or an API token."""
    found = []
    for where, text in answers:
        found += [f"{where}: a secret" for secret in secrets if secret.encode() in text]
        found += [f"{where}: an API token" for _ in API_TOKEN.finditer(text)]
    return found


def checked_app(settings, users=()):
    """A new app whose every answer is checked: against the route's OpenAPI
    description, and for any secret it was given (`users`: (name, password,
    role) made now, their passwords included) or an API token. What is wrong
    collects until problems_of() takes it."""
    app = create_app(settings)
    app.used_secrets = secrets_of(app.config["SENTINEL"])
    app.violations, app.answers = [], []

    @app.after_request
    def check_against_the_description(response):
        problem = contract.answer_problem(app, request, response)
        if problem:
            app.violations.append(problem)
        return response

    @app.after_request
    def keep_for_the_secrets_check(response):
        # Files are sent as they are read: none of them is an answer of Sentinel's.
        if not response.direct_passthrough and not response.is_streamed:
            headers = str(response.headers).encode()
            app.answers.append((f"{request.method} {request.path}", headers + response.get_data()))
        return response

    with app.app_context():
        for username, password, role in users:
            accounts.create_user(username, password, role)
            app.used_secrets.add(password)
    return app


def problems_of(app):
    """The answers since the last call that broke their description or gave
    away a secret (users' passwords made since included), and forget them."""
    problems = app.violations + leaks(app.answers, app.used_secrets)
    app.violations.clear()
    app.answers.clear()
    return problems


def close_app(app):
    app.extensions["sentinel.postgres"].close()
    app.extensions["sentinel.redis"].close()
    state.database.close_all()


def state_settings(base, pg_cluster, redis_url):
    """Settings of an app on the test cluster with its state under `base`."""
    return {
        "pg_dsn": pg_cluster.dsn(),
        "pg_data": str(pg_cluster.data),
        "redis_url": redis_url,
        "database": f"sqlite:///{base / 'state' / 'sentinel.db'}",
        "state_dir": str(base / "state"),
        "hostname": "sentinel.test",
    }


@pytest.fixture
def app(settings):
    app = checked_app(settings)
    yield app
    # Every answer of every test must match its route's description, and none
    # may give away a secret it was given, or an API token.
    problems = problems_of(app)
    assert not problems, problems
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    def make(username="alice", password="alice-password", role="admin"):
        with app.app_context():
            accounts.create_user(username, password, role)
        app.used_secrets.add(password)
        return username, password

    return make


@pytest.fixture
def sentinel_env(settings):
    """The environment a Sentinel process needs to share the test's state."""
    return {
        **os.environ,
        "SENTINEL_DATABASE": settings["database"],
        "SENTINEL_STATE_DIR": settings["state_dir"],
        "SENTINEL_PG_DSN": settings["pg_dsn"],
        "SENTINEL_REDIS_URL": settings["redis_url"],
    }


@pytest.fixture
def sentinel(sentinel_env):
    """Run `python -m sentinel ...` as a DBA would."""

    def run(*args, stdin="", extra_env=None, timeout=60):
        return subprocess.run(
            [sys.executable, "-m", "sentinel", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**sentinel_env, **(extra_env or {})},
            timeout=timeout,
        )

    return run


class Auth:
    """Signs in through the API like a client would."""

    def __init__(self, client, make_user):
        self.client = client
        self.make_user = make_user

    def login(self, username="alice", password="alice-password", create=True, role="admin"):
        if create:
            self.make_user(username, password, role)
        answer = self.client.post("/login", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["session"]

    def headers(self, **kwargs):
        return {"X-Session": self.login(**kwargs)}


@pytest.fixture
def auth(client, make_user):
    return Auth(client, make_user)


@pytest.fixture
def make_token(app, make_user):
    """An API token of a new user of `role`, for the pool's dialects."""

    def make(username="tokenholder", role="admin"):
        make_user(username, f"{username}-password", role)
        with app.app_context():
            return sessions.create_token(accounts.get_user(username), "tests")

    return make


@pytest.fixture(scope="session")
def artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def service(tmp_path_factory, pg_cluster, redis_server):
    """A gunicorn-served Sentinel with its own SQLite state, for a test module."""
    state_dir = tmp_path_factory.mktemp("service-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": pg_cluster.dsn(),
        "SENTINEL_PG_DATA": str(pg_cluster.data),
        "SENTINEL_REDIS_URL": redis_server.url,
        "SENTINEL_HOSTNAME": "sentinel.test",
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    yield service
    service.stop()


@pytest.fixture
def serve(tmp_path, pg_cluster, redis_url):
    """serve(**env) -> a running service on the test cluster, its log in web.log."""
    started = []

    def start(**extra):
        env = {
            **os.environ,
            "SENTINEL_STATE_DIR": str(tmp_path / "state"),
            "SENTINEL_PG_DSN": pg_cluster.dsn(),
            "SENTINEL_REDIS_URL": redis_url,
            "SENTINEL_HOSTNAME": "sentinel.test",
            **extra,
        }
        service = sandbox.Service(env, log=tmp_path / "web.log").start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@contextlib.contextmanager
def app_of(service):
    """An app on a running service's state, Redis and cluster: to collect in
    the test's process what the service's worker would."""
    env = service.env
    settings = {
        "state_dir": env["SENTINEL_STATE_DIR"],
        "pg_dsn": env["SENTINEL_PG_DSN"],
        "redis_url": env["SENTINEL_REDIS_URL"],
    }
    for name in ("hostname", "pg_data"):
        if f"SENTINEL_{name.upper()}" in env:
            settings[name] = env[f"SENTINEL_{name.upper()}"]
    app = create_app(settings)
    try:
        yield app
    finally:
        app.extensions["sentinel.postgres"].close()
        app.extensions["sentinel.redis"].close()
        state.database.close_all()


@pytest.fixture
def pg_connections(pg_cluster):
    """Open extra client connections (backends) to the session cluster; all are
    closed when the test ends. connect(dbname="postgres", autocommit=True)."""
    opened = []

    def connect(dbname="postgres", autocommit=True, **kwargs):
        conn = pg_cluster.connect(dbname, **kwargs)
        conn.autocommit = autocommit
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        if not conn.closed:
            conn.cancel()
            conn.close()


@pytest.fixture
def worker(sentinel_env, tmp_path):
    """A real `python -m sentinel worker` (with its cron scheduler) for the test."""
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        env=sentinel_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log_path = tmp_path / "worker.log"
    yield process
    if process.poll() is None:
        process.terminate()
        process.wait(30)
    log.close()


# -- browser tests: Debian's chromium driven by Playwright ------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# Run in every page before its own scripts (through the browser's debugging
# protocol, so the page's Content-Security-Policy does not apply to it).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""


def watch_csp_violations(context):
    """A list that fills with every Content-Security-Policy violation of the
    context's pages: the events pages see and the errors Chromium logs."""
    violations = []

    def report(text):
        violations.append(text)

    context.expose_function("reportCspViolation", report)
    context.add_init_script(REPORT_CSP_VIOLATIONS)

    def on_console(message):
        if message.type == "error" and "Content Security Policy" in message.text:
            violations.append(message.text)

    context.on("console", on_console)
    return violations


def sign_in_once(browser, service, app, role, username=None):
    """The cookies of a new user of `role` (named `username`, else at random)
    signed in through the form, made in this process (whose password hashing
    is the tests' cheapest): a module's browser tests reuse them rather than
    each sign in."""
    username = username or f"{role}{uuid.uuid4().hex[:6]}"
    with app.app_context():
        accounts.create_user(username, "user-password", role)
    context = browser.new_context(base_url=service.url)
    page = context.new_page()
    page.goto("/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("user-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_have_text(username)
    cookies = context.cookies()
    context.close()
    return cookies


@pytest.fixture(scope="module")
def ui_admin(browser, service):
    """(name, cookies) of an admin of the module's `service`, signed in once:
    the module's browser tests share that session (a user made and signed in
    for each took a second of the test)."""
    name = f"admin{uuid.uuid4().hex[:6]}"
    with app_of(service) as app:
        return name, sign_in_once(browser, service, app, "admin", name)


@pytest.fixture
def signed_in(page, ui_admin):
    """The test's page, signed in as the module's admin (`ui_admin`)."""
    page.context.add_cookies(ui_admin[1])
    return page


@pytest.fixture
def page(request, browser, service, artifacts_dir):
    context = browser.new_context(base_url=service.url)
    violations = watch_csp_violations(context)
    page = context.new_page()
    page.csp_violations = violations
    page.set_default_timeout(10_000)
    yield page
    if getattr(request.node, "test_failed", False):
        # Keep the evidence: what the browser saw and what the server said.
        stem = artifacts_dir / request.node.name
        page.screenshot(path=f"{stem}.png", full_page=True)
        (artifacts_dir / f"{request.node.name}.html").write_text(page.content())
        (artifacts_dir / f"{request.node.name}.server.log").write_bytes(
            service.log_path.read_bytes()
        )
    context.close()
    # Every browser test is also a test that its pages run under the policy.
    assert not violations, violations


def create_ui_user(service, role="admin"):
    """A new user of a running service, created through the CLI; its password
    is "user-password"."""
    name = "u" + uuid.uuid4().hex[:10]
    subprocess.run(
        [sys.executable, "-m", "sentinel", "users", "create", name, "--password-stdin"]
        + ["--role", role],
        input="user-password\n",
        env=service.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return name


@pytest.fixture
def ui_user(service):
    """A user of the module's `service` (password "user-password")."""
    return create_ui_user(service)


@pytest.fixture
def ui_user_factory():
    """ui_user_factory(service, role="admin") -> a user of that service (password
    "user-password")."""
    return create_ui_user


@pytest.fixture
def sign_in():
    """sign_in(page, username, password="user-password") through the login form."""

    def sign_in(page, username, password="user-password"):
        page.goto("/ui/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

    return sign_in
