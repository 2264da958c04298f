"""What the two fuzz runs share: a live Sentinel (gunicorn) on a cluster of its
own, signed in both as an API client and as a browser, and a campaign that
sends schemathesis's generated requests, valid and not, for every described
route of one half of /openapi.json, and validates every answer.

The destructive routes act on what the run creates: Sentinel watches a
cluster of its own here, which a generated `stop` may stop (it is started
again at once), and a generated kill can only reach that cluster's backends.
SENTINEL_FUZZ_EXAMPLES sets the examples per route (`make fuzz`: many more).
"""

import base64
import os
import re
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.control import SkipTest
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sentinel.dev import sandbox

EXAMPLES = int(os.environ.get("SENTINEL_FUZZ_EXAMPLES", "10"))
# Each part (two of the API, the web UI) sends at least this many.
MINIMUM_REQUESTS = 300
PASSWORD = "fuzz-password"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def target_cluster():
    """The cluster the fuzzed Sentinel watches and may stop, kill in, restart."""
    with sandbox.temporary_cluster("sentinel-fuzz-pg-") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, target_cluster, redis_server):
    state_dir = tmp_path_factory.mktemp("fuzz-state")
    env = {
        **os.environ,
        "SENTINEL_STATE_DIR": str(state_dir),
        "SENTINEL_PG_DSN": target_cluster.dsn(),
        "SENTINEL_PG_DATA": str(target_cluster.data),
        "SENTINEL_PG_CTL": target_cluster.pg_ctl_command(),
        "SENTINEL_REDIS_URL": redis_server.url,
        "SENTINEL_HOSTNAME": "sentinel.fuzz",
        # Generated logins fail by the thousand: throttling would refuse ours too.
        "SENTINEL_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
        "SENTINEL_LOGIN_MAX_FAILURES": "1000000",
    }
    service = sandbox.Service(env, log=state_dir / "gunicorn.log").start()
    subprocess.run(
        [sys.executable, "-m", "sentinel", "users", "create", "fuzzer", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    yield service
    service.stop()


def api_token(env):
    """An API token of the fuzzing user, for the pool's dialects."""
    created = subprocess.run(
        [sys.executable, "-m", "sentinel", "tokens", "create", "fuzzer", "fuzz"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return created.stdout.strip()


def api_session(service):
    answer = requests.post(
        f"{service.url}/login", json={"username": "fuzzer", "password": PASSWORD}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()["session"]


def browser_session(service):
    """(cookie header, CSRF token) of a browser signed in through the form."""
    browser = requests.Session()
    page = browser.get(f"{service.url}/ui/login", timeout=10).text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    answer = browser.post(
        f"{service.url}/ui/login",
        data={"username": "fuzzer", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return f"sentinel={browser.cookies['sentinel']}", token


@pytest.fixture(scope="module")
def credentials(fuzzed):
    cookie, token = browser_session(fuzzed)
    api = api_token(fuzzed.env)
    return {
        "X-Session": api_session(fuzzed),
        "Cookie": cookie,
        "X-CSRFToken": token,
        # Each pool dialect's clients send the token their own way.
        "Authorization": f"Bearer {api}",
        "user-token": api,
        "Token": api,
    }


BASIC = "Basic " + base64.b64encode(f"fuzzer:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def operations(fuzzed):
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


class Campaign:
    """Sends every generated case, validates its answer, and keeps count."""

    def __init__(self, service, credentials, cluster):
        self.service = service
        self.credentials = credentials
        self.cluster = cluster
        self.sent = {}
        self.seconds = {}
        self.failures = {}
        self.spare_session = None
        self.spare_browser = None

    # A sign-in costs the installed password hash (most of a second): the
    # sign-outs share a spare session, made anew only once one has ended it.

    def session_to_end(self):
        """A live API session other than the one every other call uses."""
        spare = self.spare_session
        if spare is None or not self.answers_200("/profile", {"X-Session": spare}):
            self.spare_session = api_session(self.service)
        return self.spare_session

    def browser_to_sign_out(self):
        """A live browser session (cookie, CSRF token) other than the shared one."""
        spare = self.spare_browser
        if spare is None or not self.answers_200("/ui/", {"Cookie": spare[0]}):
            self.spare_browser = browser_session(self.service)
        return self.spare_browser

    def answers_200(self, path, headers):
        url = f"{self.service.url}{path}"
        answer = requests.get(url, headers=headers, allow_redirects=False, timeout=10)
        return answer.status_code == 200

    def send(self, case):
        headers = dict(self.credentials)
        if case.path == "/logout":  # would end the session every other call uses
            headers["X-Session"] = self.session_to_end()
        if case.path == "/ui/logout":
            headers["Cookie"], headers["X-CSRFToken"] = self.browser_to_sign_out()
        if case.path == "/ds-api/user-token":  # Datasentinel's login: HTTP Basic
            headers["Authorization"] = BASIC
        label = f"{case.method} {case.path}"
        self.sent[label] = self.sent.get(label, 0) + 1
        started = time.perf_counter()
        try:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=90)
        except (Failure, FailureGroup) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            for failure in failures:
                # One example of each kind of failure per route is enough to act on.
                self.failures.setdefault((label, failure.title), f"{label}: {failure}")
        finally:
            self.seconds[label] = self.seconds.get(label, 0) + time.perf_counter() - started
            if case.path.endswith("/administration/control") and not self.cluster.is_running():
                self.cluster.start()  # a generated stop (API or page): the next calls need it up

    def run(self, operation, mode):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.generate],
        )
        def fuzz(case):
            self.send(case)

        try:
            fuzz()
        except (Unsatisfiable, SkipTest):
            # Nothing of this operation can be made invalid (no parameter, no body).
            assert mode == GenerationMode.NEGATIVE, operation.label


def fuzz_every_operation(fuzzed, credentials, target_cluster, operations):
    """Fuzz these operations, both ways; fails with one example of each kind of
    failure per route, or when a route was never reached."""
    campaign = Campaign(fuzzed, credentials, target_cluster)
    # The invalid cases come from a schema configured for them alone: there
    # schemathesis says at once that an operation has nothing to make invalid,
    # where Hypothesis otherwise gave up only after some 460 rejected draws,
    # seconds per operation and most of the campaign's time.
    negative = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    negative.config.generation.update(modes=[GenerationMode.NEGATIVE])
    invalid = {result.ok().label: result.ok() for result in negative.get_all_operations()}
    description = requests.get(f"{fuzzed.url}/openapi.json", timeout=30).json()
    for operation in operations:
        campaign.run(operation, GenerationMode.POSITIVE)
        if can_be_made_invalid(description, operation):
            campaign.run(invalid[operation.label], GenerationMode.NEGATIVE)

    slowest = sorted(campaign.seconds.items(), key=lambda item: -item[1])[:8]
    print(f"{sum(campaign.sent.values())} requests; slowest routes: {slowest}")
    assert not campaign.failures, "\n\n".join(campaign.failures.values())
    assert sum(campaign.sent.values()) >= MINIMUM_REQUESTS, campaign.sent
    described = {f"{operation.method.upper()} {operation.path}" for operation in operations}
    assert set(campaign.sent) == described


# A path segment's description: any text but a slash, which would make it
# another path (and another route) rather than an invalid one.
ANY_SEGMENT = ({"type": "string"}, {"type": "string", "pattern": "^[^/]+$"})


def can_be_made_invalid(description, operation):
    """Whether an operation has anything schemathesis can send invalid: a
    body, or a parameter other than a plain path segment. For the others
    Hypothesis gave up only after 2 to 9 s of rejected draws each (the
    maintenance plugin's GET routes: 52 s of its part's 54), never sending a
    request."""
    item = description["paths"][operation.path]
    method = item[operation.method.lower()]
    if "requestBody" in method:
        return True
    parameters = item.get("parameters", []) + method.get("parameters", [])
    return any(
        parameter["in"] != "path" or parameter.get("schema") not in ANY_SEGMENT
        for parameter in parameters
    )


def of_the_web_ui(operation):
    return operation.path == "/ui" or operation.path.startswith(("/ui/", "/static/"))


# The API routes are fuzzed in three parts, run at once: these plugins', the
# pool's dialects, and the rest.
LATER_PLUGINS = ("/maintenance", "/pgconf/", "/statements")
POOL = (
    "/ds-api/",
    "/api/",
    "/source",
    "/metric",
    "/preset",
    "/test-connect",
    "/log",
    "/liveness",
    "/readiness",
)


def of_later_plugins(operation):
    return operation.path.startswith(LATER_PLUGINS)


def of_the_pool(operation):
    return operation.path.startswith(POOL)
