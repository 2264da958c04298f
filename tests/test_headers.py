"""Security headers on every answer, and every page still working under its
Content-Security-Policy in Chromium (no violation, charts drawn)."""

import re

import pytest
from conftest import app_of
from playwright.sync_api import expect

from sentinel import contract
from sentinel.extensions import postgres, redis
from sentinel.plugins.dashboard import dashboard
from sentinel.plugins.monitoring import monitoring

HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def policy(headers):
    """The Content-Security-Policy of an answer's headers, as {directive: [sources]}."""
    text = headers.get("Content-Security-Policy") or headers.get("content-security-policy")
    assert text, "no Content-Security-Policy"
    directives = (part.split() for part in text.split(";") if part.strip())
    return {words[0]: words[1:] for words in directives}


def assert_secure(headers, where):
    found = {name: headers.get(name) or headers.get(name.lower()) for name in HEADERS}
    assert found == HEADERS, where
    directives = policy(headers)
    assert directives["frame-ancestors"] == ["'none'"], where
    for directive in ("script-src", "style-src"):
        assert directives[directive] == ["'self'"], where
    for sources in directives.values():
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(sources), where


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/ui/login", 200),
        ("GET", "/", 302),
        ("GET", "/ui/", 302),
        ("GET", "/status", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/profile", 401),
        ("POST", "/login", 406),
        ("GET", "/nowhere", 404),
        ("GET", "/ui/nowhere", 404),
        ("DELETE", "/status", 405),
        ("GET", "/static/sentinel.js", 200),
        ("GET", "/static/vendor/uPlot.iife.min.js", 200),
        ("GET", "/ui/activity/static/activity.css", 200),
    ],
    ids=str,
)
def test_every_kind_of_answer_carries_the_security_headers(client, method, path, status):
    answer = client.open(
        path,
        method=method,
        json={} if method == "POST" else None,
        headers={"X-Session": "0" * 64},
    )
    answer.close()
    assert answer.status_code == status
    assert_secure(answer.headers, f"{method} {path}")


# -- the pages, in Chromium ----------------------------------------------------------------


def page_paths(app):
    """The path of every page: GET routes without parameters answering HTML."""
    paths = []
    for rule in app.url_map.iter_rules():
        described = contract.contract_of(app, rule)
        answer = described.answers.get(200) if described else None
        html = isinstance(answer, tuple) and answer[0] == contract.HTML
        if html and "GET" in rule.methods and not rule.arguments:
            paths.append(rule.rule)
    return sorted(paths)


@pytest.fixture
def service_app(service):
    """An app on the service's state, Redis and cluster, to collect samples and runs."""
    with app_of(service) as app:
        yield app


@pytest.fixture
def collected(service_app):
    """Two dashboard samples and two monitoring runs, so that every chart has lines."""
    settings = service_app.config["SENTINEL"]
    with service_app.app_context():
        for _ in range(2):
            dashboard.collect_and_store(postgres.pool, redis.samples, settings)
            monitoring.collect_and_store(postgres.pool, redis.samples, settings)
    return service_app


def drawn(page, charts):
    """Every chart of the page drawn by uPlot on a canvas."""
    expect(page.locator(charts)).not_to_have_count(0)
    for chart in page.locator(charts).all():
        expect(chart.locator(".uplot canvas")).to_have_count(1)


def described(page):
    """Swagger UI lists the routes, and a link to one opens it with its answers'
    schemas (it draws the other groups as they are scrolled into view)."""
    # Swagger UI reads the whole description (over 170 routes) before it draws.
    expect(page.locator(".opblock-summary").first).to_be_visible(timeout=20_000)
    page.goto("/ui/api#/auth/get_auth_profile")
    page.reload()  # a new fragment alone loads nothing
    summary = page.locator(".opblock-summary", has_text="/profile").first
    # Swagger UI reads the whole description (over 150 routes) first.
    expect(summary.locator("xpath=..").locator(".responses-table")).to_be_visible(timeout=20_000)


# What shows that each page's scripts and styles ran: {path: check(page)}.
PAGE_WORKS = {
    "/ui/login": lambda page: expect(page.get_by_label("Username")).to_be_visible(),
    "/ui/": lambda page: expect(page.locator("#instance")).to_contain_text("PostgreSQL 15."),
    "/ui/activity/": lambda page: expect(page.locator("#activity-status")).to_contain_text(
        "Refreshed at"
    ),
    "/ui/administration/": lambda page: expect(page.locator("#instance-state")).to_contain_text(
        "Running"
    ),
    "/ui/dashboard/": lambda page: drawn(page, "#charts .chart"),
    "/ui/monitoring/": lambda page: drawn(page, "#charts figure.chart"),
    "/ui/statements/": lambda page: expect(page.locator("#statements")).to_have_attribute(
        "data-loaded", re.compile(".")
    ),
    "/ui/pgconf/": lambda page: expect(page.locator("#pgconf-status")).to_contain_text("Read at"),
    "/ui/maintenance/": lambda page: expect(page.locator("#maintenance-status")).to_contain_text(
        "Refreshed at"
    ),
    "/ui/maintenance/jobs": lambda page: expect(page.locator("#jobs-count")).to_contain_text("("),
    "/ui/sources/": lambda page: expect(page.locator("#sources-status")).to_contain_text(
        "Refreshed at"
    ),
    "/ui/api": described,
}


def test_every_page_works_under_the_policy(page, collected, ui_user, sign_in):
    assert page_paths(collected) == sorted(PAGE_WORKS), "a page without its check here"
    documents = {}

    def keep_headers(answer):
        if answer.request.resource_type == "document":
            documents[answer.url] = answer.all_headers()

    page.on("response", keep_headers)
    page.goto("/ui/login")
    PAGE_WORKS["/ui/login"](page)
    sign_in(page, ui_user)
    for path, works in PAGE_WORKS.items():
        if path != "/ui/login":
            page.goto(path)
            works(page)
    page.goto("/ui/nowhere")
    expect(page.get_by_role("alert")).to_have_text("URL not found.")
    assert len(documents) >= len(PAGE_WORKS) + 1
    for url, headers in documents.items():
        assert_secure(headers, url)
    assert page.csp_violations == []


def test_the_policy_blocks_a_script_written_into_a_page(page, ui_user, sign_in):
    sign_in(page, ui_user)
    expect(page.locator("#signed-in-as")).to_have_text(ui_user)
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
        }"""
    )
    assert page.evaluate("window.injected") is None
    assert any("script-src" in violation for violation in page.csp_violations)
    page.csp_violations.clear()  # expected here: the page fixture checks the rest
