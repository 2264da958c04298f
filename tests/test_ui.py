"""The web UI in a real headless Chromium against the real gunicorn."""

import pytest
from playwright.sync_api import expect

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
