"""The web UI in a real headless Chromium against the real gunicorn."""

import json
import re
import urllib.error
import urllib.request
import zlib

import pytest
from itsdangerous.encoding import base64_decode
from playwright.sync_api import expect

from sentinel import create_app, state
from sentinel.auth import sessions
from sentinel.errors import Malformed, Unauthorized

pytestmark = pytest.mark.browser


def test_sign_in_shows_the_instance_and_the_login(page, ui_user, pg_cluster, sign_in):
    sign_in(page, ui_user, "user-password")
    expect(page).to_have_url("/ui/")
    expect(page.locator("#signed-in-as")).to_have_text(ui_user)
    expect(page.get_by_role("heading", level=1)).to_have_text("sentinel.test")
    instance = page.locator("#instance")
    expect(instance).to_contain_text("PostgreSQL 15.")
    expect(instance).to_contain_text(str(pg_cluster.port))
    first_notification = page.locator("#notifications tbody tr").first
    expect(first_notification).to_contain_text(ui_user)
    expect(first_notification).to_contain_text("Login")
    # Relative, with the full timestamp on hover.
    expect(first_notification.locator("time")).to_have_text("just now")
    expect(first_notification.locator("time")).to_have_attribute("title", re.compile(r"^\d{4}-"))


def test_the_sign_in_page_names_the_instance(page, pg_cluster):
    page.goto("/ui/login")
    named = page.locator("#signin-instance")
    expect(named).to_contain_text("sentinel.test")
    expect(named).to_contain_text(f":{pg_cluster.port}")
    expect(page).to_have_title(re.compile("sentinel.test"))


def test_the_favicon_loads_without_a_console_error(page, ui_user, sign_in):
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    sign_in(page, ui_user)
    expect(page.locator("#signed-in-as")).to_have_text(ui_user)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(icon)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    expect(page.locator(".site-header .brand img")).to_have_js_property("complete", True)
    assert page.locator(".site-header .brand img").evaluate("img => img.naturalWidth") > 0
    page.goto("/ui/activity/")
    expect(page.locator("#activity-status")).to_contain_text("Refreshed at")
    assert not errors, errors
    assert not failed, failed


def test_the_header_names_the_browsers_time_zone_once(browser, service, ui_user, sign_in):
    context = browser.new_context(base_url=service.url, timezone_id="America/Sao_Paulo")
    try:
        page = context.new_page()
        sign_in(page, ui_user)
        expect(page.locator("#time-zone")).to_have_text("Times in America/Sao_Paulo (UTC-03:00)")
        expect(page.get_by_text("America/Sao_Paulo")).to_have_count(1)
    finally:
        context.close()


def test_on_a_phone_the_navigation_folds_and_nothing_overflows(browser, service, ui_user, sign_in):
    context = browser.new_context(base_url=service.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        sign_in(page, ui_user)
        activity = page.get_by_role("link", name="Activity")
        expect(activity).to_be_hidden()
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
        activity.click()
        expect(page.locator("#activity-status")).to_contain_text("Refreshed at")
        for path in ("/ui/", "/ui/activity/", "/ui/administration/"):
            page.goto(path)
            expect(page.locator(".refresh-status")).to_contain_text("Refreshed at")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        # The wide tables scroll inside their own box.
        box = page.goto("/ui/activity/") and page.locator("#backends").locator("xpath=..")
        expect(page.locator("#backends tbody tr[data-pid]").first).to_be_visible()
        assert box.evaluate("el => el.scrollWidth > el.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


def test_a_wrong_password_shows_an_error(page, ui_user, sign_in):
    sign_in(page, ui_user, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    expect(page).to_have_url("/ui/login")
    expect(page.locator("#signed-in-as")).to_have_count(0)


def test_sign_out_ends_the_session(page, ui_user, sign_in):
    sign_in(page, ui_user, "user-password")
    expect(page.locator("#signed-in-as")).to_have_text(ui_user)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    page.goto("/ui/")
    expect(page).to_have_url("/ui/login?next=%2Fui%2F")


def test_pages_need_a_signed_in_user(page):
    page.goto("/")
    expect(page).to_have_url("/ui/login?next=%2Fui%2F")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_unknown_ui_page_is_an_html_404(page, ui_user, sign_in):
    sign_in(page, ui_user, "user-password")
    answer = page.goto("/ui/nowhere")
    assert answer.status == 404
    expect(page.get_by_role("alert")).to_have_text("URL not found.")


def test_a_form_without_its_csrf_token_is_refused(page, service, ui_user):
    answer = page.request.post("/ui/login", form={"username": ui_user, "password": "user-password"})
    assert answer.status == 400
    assert "The form has expired" in answer.text()


@pytest.fixture
def service_state(service):
    """An app on the service's own state database, to look at its sessions."""
    app = create_app(
        {
            "state_dir": service.env["SENTINEL_STATE_DIR"],
            "pg_dsn": service.env["SENTINEL_PG_DSN"],
            "redis_url": service.env["SENTINEL_REDIS_URL"],
        }
    )
    with app.app_context():
        yield app
    app.extensions["sentinel.postgres"].close()
    app.extensions["sentinel.redis"].close()
    state.database.close_all()


def session_cookie(page):
    return next(cookie for cookie in page.context.cookies() if cookie["name"] == "sentinel")


def strings_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def cookie_strings(cookie):
    """Every string Flask's session cookie holds, read without the secret key:
    the cookie is signed (itsdangerous), not encrypted. A leading dot means
    its payload is compressed."""
    payload = base64_decode(cookie.lstrip(".").split(".")[0])
    if cookie.startswith("."):
        payload = zlib.decompress(payload)
    return set(strings_in(json.loads(payload)))


def profile_status(service, session):
    """GET /profile's status with `session` as X-Session (no cookie sent)."""
    call = urllib.request.Request(service.url + "/profile", headers={"X-Session": session})
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_nothing_in_the_ui_cookie_works_against_the_api(
    page, service, service_state, ui_user, sign_in
):
    sign_in(page, ui_user)
    expect(page.locator("#signed-in-as")).to_have_text(ui_user)
    found = cookie_strings(session_cookie(page)["value"])
    timeout = service_state.config["SENTINEL"]["session_timeout"]
    # What the cookie does hold: the reference of the UI's own sign-in.
    signed_in = [value for value in found if _resolves_ui(value, timeout)]
    assert len(signed_in) == 1, found
    for value in found:
        assert profile_status(service, value) in (401, 406), value
        with pytest.raises((Malformed, Unauthorized)):
            sessions.resolve(value, timeout)
        with pytest.raises(Unauthorized):
            sessions.authenticate_token(value)


def _resolves_ui(value, timeout):
    try:
        return sessions.resolve_ui(value, timeout).username
    except (Malformed, Unauthorized):
        return None


def test_signing_out_ends_the_ui_session_on_the_server(
    page, browser, service, service_state, ui_user, sign_in
):
    sign_in(page, ui_user)
    expect(page.locator("#signed-in-as")).to_have_text(ui_user)
    cookie = session_cookie(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    # The cookie from before signing out, replayed by another browser.
    replay = browser.new_context(base_url=service.url)
    try:
        replay.add_cookies([cookie])
        other = replay.new_page()
        other.goto("/ui/")
        expect(other).to_have_url("/ui/login?next=%2Fui%2F")
        answer = other.request.get("/ui/administration/state", max_redirects=0)
        assert answer.status == 302
    finally:
        replay.close()
    timeout = service_state.config["SENTINEL"]["session_timeout"]
    assert not any(_resolves_ui(value, timeout) for value in cookie_strings(cookie["value"]))
