"""The Sources page in Chromium, against sources pointing at the test cluster
(and at a closed port): the list and its status, the tag filter, the form with
its connection test and its refusals beside their fields, an edit that keeps
the stored password, disable and enable, delete after a confirmation, and a
viewer's read-only page. Sources an API would create are made through the
same store, in the service's own state."""

import re
import uuid

import pytest
from conftest import app_of, sign_in_once
from playwright.sync_api import expect

from sentinel.dev.sandbox import free_port
from sentinel.errors import NotFound
from sentinel.pool import secrets, store
from sentinel.pool.models import Source
from sentinel.state import utcnow

browser = pytest.mark.browser


class Pool:
    """The service's store, used from the test as an API client would, and
    the live status the collection would write."""

    def __init__(self, app, cluster):
        self.app = app
        self.cluster = cluster

    def create(self, **fields):
        """A new source on the test cluster, its name unique to the test."""
        values = {
            "name": f"src-{uuid.uuid4().hex[:8]}",
            "host": "127.0.0.1",
            "port": self.cluster.port,
            "user": "postgres",
            "password": self.cluster.password,
            **fields,
        }
        with self.app.app_context():
            return store.create(values)

    def get(self, name, show_password=False):
        with self.app.app_context():
            return store.get(name, show_password=show_password)

    def exists(self, name):
        try:
            self.get(name)
        except NotFound:
            return False
        return True

    def collected(self, name, connected, error=None):
        """Record how a collection went, as the collection does."""
        with self.app.app_context():
            Source.update(
                connected=connected,
                last_error=error,
                last_collected_at=utcnow() if connected else None,
            ).where(Source.name == name).execute()


@pytest.fixture(scope="module")
def pool(service, pg_cluster):
    with app_of(service) as app:
        yield Pool(app, pg_cluster)


@pytest.fixture(scope="module")
def admin(browser, service, pool):
    return sign_in_once(browser, service, pool.app, "admin")


@pytest.fixture(scope="module")
def viewer(browser, service, pool):
    return sign_in_once(browser, service, pool.app, "viewer")


def open_page(page, cookies):
    """The Sources page in the test's own browser context, signed in with `cookies`."""
    page.context.add_cookies(cookies)
    page.goto("/ui/sources/")
    expect(page.locator("#sources-status")).to_contain_text("Refreshed at")
    return page


@pytest.fixture
def admin_page(page, admin):
    return open_page(page, admin)


def row(page, name):
    return page.locator("#sources tbody tr", has=page.locator("td.name", has_text=name))


def field(page, label):
    return page.locator("#source-form").get_by_label(label, exact=True)


def fill_new(page, pg_cluster, name, port=None, password=None):
    page.get_by_role("button", name="Add a source").click()
    expect(page.locator("#source-dialog")).to_be_visible()
    field(page, "Name").fill(name)
    field(page, "Host").fill("127.0.0.1")
    field(page, "Port").fill(str(port or pg_cluster.port))
    field(page, "User").fill("postgres")
    field(page, "Password").fill(pg_cluster.password if password is None else password)


def form_outcome(page):
    return page.locator("#form-outcome")


@browser
def test_an_admin_adds_a_source_and_the_list_shows_it(admin_page, pg_cluster, pool):
    page = admin_page
    expect(page.get_by_role("link", name="Sources")).to_have_attribute("aria-current", "page")
    name = f"added-{uuid.uuid4().hex[:6]}"
    fill_new(page, pg_cluster, name)
    field(page, "Tags").fill("env=test\nteam = dba")
    field(page, "Preset").select_option("basic")
    page.locator("#source-form").get_by_role("button", name="Save").click()
    expect(page.locator("#source-dialog")).to_be_hidden()
    expect(page.locator("#outcome")).to_contain_text(f"Source {name} added.")
    listed = row(page, name)
    expect(listed).to_contain_text(f"postgres@127.0.0.1:{pg_cluster.port}/postgres")
    expect(listed).to_contain_text("env=test")
    expect(listed).to_contain_text("team=dba")
    expect(listed).to_contain_text("basic")
    expect(listed).to_contain_text("not checked yet")
    stored = pool.get(name, show_password=True)
    assert stored["password"] == pg_cluster.password
    assert stored["tags"] == {"env": "test", "team": "dba"}
    assert pg_cluster.password not in page.content()


@browser
def test_the_connection_test_reaches_the_test_cluster(admin_page, pg_cluster):
    page = admin_page
    fill_new(page, pg_cluster, "not-saved")
    page.get_by_role("button", name="Test connection").click()
    expect(form_outcome(page)).to_contain_text(
        f"Connected to 127.0.0.1:{pg_cluster.port}, database postgres, as postgres."
    )
    expect(form_outcome(page)).to_have_attribute("role", "status")


@browser
def test_the_connection_test_on_a_closed_port_says_why(admin_page, pg_cluster):
    page = admin_page
    port = free_port()
    fill_new(page, pg_cluster, "not-saved", port=port)
    page.get_by_role("button", name="Test connection").click()
    failure = page.locator("#form-outcome[role=alert]")
    expect(failure).to_contain_text(
        f'Connection failed: connection to server at "127.0.0.1", port {port} failed'
    )
    expect(failure).to_contain_text("Connection refused")


@browser
def test_a_wrong_password_fails_the_test_without_being_shown(admin_page, pg_cluster):
    page = admin_page
    wrong = "wrong-" + uuid.uuid4().hex
    fill_new(page, pg_cluster, "not-saved", password=wrong)
    page.get_by_role("button", name="Test connection").click()
    failure = page.locator("#form-outcome[role=alert]")
    expect(failure).to_contain_text('password authentication failed for user "postgres"')
    assert wrong not in failure.text_content()


@browser
def test_a_refused_value_is_shown_beside_its_field(admin_page, pg_cluster, pool):
    page = admin_page
    fill_new(page, pg_cluster, "bad name!")
    page.locator("#source-form").get_by_role("button", name="Save").click()
    expect(page.locator("#source-name-error")).to_have_text(
        "name: only letters, digits, '_', '-' and '.' are allowed"
    )
    expect(field(page, "Name")).to_have_attribute("aria-invalid", "true")
    # The dialog stays open with what was typed, to be corrected.
    expect(field(page, "Name")).to_have_value("bad name!")
    expect(page.locator("#source-port-error")).to_be_hidden()


@browser
def test_a_taken_name_is_shown_beside_the_name(admin_page, pg_cluster, pool):
    page = admin_page
    taken = pool.create()["name"]
    fill_new(page, pg_cluster, taken)
    page.locator("#source-form").get_by_role("button", name="Save").click()
    expect(page.locator("#source-name-error")).to_have_text(
        f"name: a source named '{taken}' already exists."
    )


@browser
def test_the_list_shows_how_the_last_collection_went(page, admin, pool):
    up = pool.create()["name"]
    down = pool.create(port=free_port())["name"]
    off = pool.create(enabled=False)["name"]
    pool.collected(up, connected=True)
    pool.collected(down, connected=False, error="connection refused at the last run")
    open_page(page, admin)
    expect(row(page, up).locator(".badge")).to_have_text("connected")
    expect(row(page, up)).to_contain_text(re.compile(r"just now|\d+ s ago"))
    expect(row(page, down).locator(".badge.status-critical")).to_have_text("unreachable")
    expect(row(page, down)).to_contain_text("connection refused at the last run")
    expect(row(page, off).locator(".badge")).to_have_text("disabled")


@browser
def test_markup_in_a_tag_or_an_error_is_shown_as_text(page, admin, pool):
    name = pool.create(tags={"note": "<b>bold</b>"})["name"]
    pool.collected(name, connected=False, error="<img src=x>refused")
    open_page(page, admin)
    listed = row(page, name)
    expect(listed).to_contain_text("note=<b>bold</b>")
    expect(listed).to_contain_text("<img src=x>refused")
    expect(listed.locator("b, img")).to_have_count(0)


@browser
def test_sources_are_filtered_by_tag(page, admin, pool):
    mark = uuid.uuid4().hex[:6]
    prod = pool.create(tags={"env": f"prod-{mark}"})["name"]
    dev = pool.create(tags={"env": f"dev-{mark}"})["name"]
    open_page(page, admin)
    page.get_by_label("Tag", exact=True).select_option(f"env=prod-{mark}")
    expect(page.locator("#sources tbody tr")).to_have_count(1)
    expect(row(page, prod)).to_be_visible()
    expect(page.locator("#sources-count")).to_have_text(re.compile(r"\(1 of \d+\)"))
    # The filter is in the address: a reload or a link keeps it.
    assert f"tag=env%3Dprod-{mark}" in page.url
    page.reload()
    expect(row(page, prod)).to_be_visible()
    expect(row(page, dev)).to_have_count(0)
    # A click on a tag filters by it too.
    page.get_by_label("Tag", exact=True).select_option("")
    row(page, dev).get_by_role("button", name=f"env=dev-{mark}").click()
    expect(page.locator("#sources tbody tr")).to_have_count(1)
    expect(row(page, dev)).to_be_visible()


@browser
def test_an_edit_keeps_the_stored_password(admin_page, pg_cluster, pool):
    page = admin_page
    name = pool.create(group="before")["name"]
    page.reload()
    row(page, name).get_by_role("button", name="Edit").click()
    shown = secrets.obfuscate(pg_cluster.password)
    expect(field(page, "Password")).to_have_value(shown)
    expect(page.locator("#source-password-help")).to_contain_text(f"Stored: {shown} (obfuscated)")
    field(page, "Group").fill("after")
    page.locator("#source-form").get_by_role("button", name="Save").click()
    expect(page.locator("#outcome")).to_contain_text(f"Source {name} saved.")
    expect(row(page, name)).to_contain_text("after")
    stored = pool.get(name, show_password=True)
    assert (stored["group"], stored["password"]) == ("after", pg_cluster.password)


@browser
def test_the_connection_test_of_an_edit_uses_the_stored_password(admin_page, pg_cluster, pool):
    page = admin_page
    name = pool.create()["name"]
    page.reload()
    row(page, name).get_by_role("button", name="Edit").click()
    expect(field(page, "Password")).to_have_value(secrets.obfuscate(pg_cluster.password))
    page.get_by_role("button", name="Test connection").click()
    expect(form_outcome(page)).to_contain_text(f"Connected to 127.0.0.1:{pg_cluster.port}")


@browser
def test_a_source_is_disabled_then_enabled_again(admin_page, pool):
    page = admin_page
    name = pool.create()["name"]
    page.reload()
    row(page, name).get_by_role("button", name="Disable").click()
    expect(page.locator("#outcome")).to_contain_text(f"Source {name} disabled")
    expect(row(page, name).locator(".badge")).to_have_text("disabled")
    assert pool.get(name)["enabled"] is False
    row(page, name).get_by_role("button", name="Enable").click()
    expect(page.locator("#outcome")).to_contain_text(f"Source {name} enabled")
    expect(row(page, name).locator(".badge")).to_have_text("not checked yet")
    assert pool.get(name)["enabled"] is True


@browser
def test_a_source_is_deleted_only_once_confirmed(admin_page, pg_cluster, pool):
    page = admin_page
    name = pool.create()["name"]
    page.reload()
    row(page, name).get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text(
        f"Delete source {name} (postgres@127.0.0.1:{pg_cluster.port}/postgres):"
        " Sentinel stops monitoring it"
    )
    dialog.get_by_role("button", name="Back").click()
    expect(dialog).to_be_hidden()
    assert pool.exists(name)
    row(page, name).get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("#outcome")).to_contain_text(f"Source {name} deleted.")
    expect(row(page, name)).to_have_count(0)
    assert not pool.exists(name)


@browser
def test_a_viewer_sees_the_list_without_write_buttons(page, viewer, pool):
    name = pool.create()["name"]
    open_page(page, viewer)
    expect(row(page, name)).to_be_visible()
    expect(page.get_by_text("adding or changing sources needs the admin role")).to_be_visible()
    for label in ("Add a source", "Edit", "Disable", "Delete"):
        expect(page.get_by_role("button", name=label)).to_have_count(0)
    expect(page.get_by_role("columnheader", name="Actions")).to_have_count(0)


@browser
def test_a_viewer_is_refused_a_write(page, viewer, pool):
    source = pool.create()
    open_page(page, viewer)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    answer = page.request.post(
        f"/ui/sources/{source['id']}/delete",
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert answer.status == 403
    assert answer.json()["error"].startswith("This needs the admin role")
    assert pool.exists(source["name"])


def signed_in(client, make_user):
    """Sign a Flask test client in through the form, as a browser does; the
    headers the page's own calls send."""
    username, password = make_user("poolui", "poolui-password")
    login = client.get("/ui/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', login).group(1)
    client.post("/ui/login", data={"username": username, "password": password, "csrf_token": token})
    return {"X-CSRFToken": token, "Accept": "application/json"}


def form_of(pg_cluster, name):
    """The form's fields for a source on the test cluster, as the page sends them."""
    return {
        "name": name,
        "host": "127.0.0.1",
        "port": str(pg_cluster.port),
        "dbname": "postgres",
        "user": "postgres",
        "password": pg_cluster.password,
        "sslmode": "prefer",
        "tags": "",
        "group": "default",
        "kind": "postgres",
        "preset": "",
        "enabled": True,
    }


def test_no_answer_of_the_page_holds_a_password_in_clear(app, client, make_user, pg_cluster):
    """Through the Flask client: each answer is also checked against its
    description in /openapi.json, and for the app's secrets, this one among them."""
    password = pg_cluster.password
    app.used_secrets.add(password)
    headers = signed_in(client, make_user)
    form = form_of(pg_cluster, "leakcheck")
    created = client.post("/ui/sources/", json=form, headers=headers)
    assert created.status_code == 201
    source_id = created.get_json()["source"]["id"]
    shown = client.get(f"/ui/sources/{source_id}", headers=headers).get_json()["source"]
    assert shown["password"] == secrets.obfuscate(password)
    answers = [
        created,
        client.get("/ui/sources/", headers={"Accept": "text/html"}),
        client.get("/ui/sources/data", headers=headers),
        client.post(
            "/ui/sources/test",
            json={**form, "password": shown["password"], "id": source_id},
            headers=headers,
        ),
        client.post(
            f"/ui/sources/{source_id}",
            json={**form, "password": shown["password"]},
            headers=headers,
        ),
    ]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 200]
    assert not [answer for answer in answers if password.encode() in answer.get_data()]


def test_a_write_without_its_csrf_token_is_refused(app, client, make_user, pg_cluster):
    headers = signed_in(client, make_user)
    created = client.post("/ui/sources/", json=form_of(pg_cluster, "kept"), headers=headers)
    source_id = created.get_json()["source"]["id"]
    refused = client.post(f"/ui/sources/{source_id}/delete", headers={"Accept": "application/json"})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "The form has expired; reload the page and try again."
    assert client.get(f"/ui/sources/{source_id}", headers=headers).status_code == 200
