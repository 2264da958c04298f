"""The web UI in a real headless Chromium against the real gunicorn."""

import subprocess
import sys
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.browser

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


@pytest.fixture
def page(request, browser, service, artifacts_dir):
    context = browser.new_context(base_url=service.url)
    page = context.new_page()
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


@pytest.fixture
def user(service):
    name = "u" + uuid.uuid4().hex[:10]
    subprocess.run(
        [sys.executable, "-m", "sentinel", "users", "create", name, "--password-stdin"],
        input="user-password\n",
        env=service.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return name


def sign_in(page, username, password):
    page.goto("/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_shows_the_instance_and_the_login(page, user, pg_cluster):
    sign_in(page, user, "user-password")
    expect(page).to_have_url("/ui/")
    expect(page.locator("#signed-in-as")).to_have_text(user)
    expect(page.get_by_role("heading", level=1)).to_have_text("sentinel.test")
    instance = page.locator("#instance")
    expect(instance).to_contain_text("PostgreSQL 15.")
    expect(instance).to_contain_text(str(pg_cluster.port))
    first_notification = page.locator("#notifications tbody tr").first
    expect(first_notification).to_contain_text(user)
    expect(first_notification).to_contain_text("Login")


def test_a_wrong_password_shows_an_error(page, user):
    sign_in(page, user, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    expect(page).to_have_url("/ui/login")
    expect(page.locator("#signed-in-as")).to_have_count(0)


def test_sign_out_ends_the_session(page, user):
    sign_in(page, user, "user-password")
    expect(page.locator("#signed-in-as")).to_have_text(user)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    page.goto("/ui/")
    expect(page).to_have_url("/ui/login?next=%2Fui%2F")


def test_pages_need_a_signed_in_user(page):
    page.goto("/")
    expect(page).to_have_url("/ui/login?next=%2Fui%2F")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_unknown_ui_page_is_an_html_404(page, user):
    sign_in(page, user, "user-password")
    answer = page.goto("/ui/nowhere")
    assert answer.status == 404
    expect(page.get_by_role("alert")).to_have_text("URL not found.")


def test_a_form_without_its_csrf_token_is_refused(page, service, user):
    answer = page.request.post("/ui/login", form={"username": user, "password": "user-password"})
    assert answer.status == 400
    assert "The form has expired" in answer.text()
