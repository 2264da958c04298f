"""The pool through Datasentinel's Connection API: connections added only once
Sentinel reached them on the test cluster, displayed with the document's keys
and defaults (the password obfuscated), updated in part, disabled, enabled
and deleted, each refusal a `{"error"}` with the status the document gives."""

import base64
import logging
import re

import pytest
import redis
from conftest import checked_app, close_app, problems_of, state_settings

from sentinel.auth import accounts, sessions
from sentinel.core import notifications
from sentinel.dev.sandbox import free_port
from sentinel.pool import store

INSTANCES = "/ds-api/pool/pg-instances"
TAGS = "application=sales,environment=production"
NEW_PASSWORD = "a-new-monitoring-password"
ADMIN = ("alice", "alice-password", "admin")
VIEWER = ("victor", "victor-password", "viewer")
# The document's own example: not JSON, for its trailing comma.
DOCUMENT_EXAMPLE = """{
    "host": "pg-sales-1734",
    "port": 9342,
    "user": "datasentinel",
    "password": "sentinel",
    "tags": "application=sales,environment=production,provider=amazon,datacenter=lyon",
}"""


def basic(username, password):
    return {
        "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    }


@pytest.fixture(scope="module")
def app(tmp_path_factory, pg_cluster, redis_server):
    """One app for the module, its users and tokens made once: hashing their
    passwords (argon2) for every test was most of the module's time. Each test
    still starts with an empty pool and no failed logins (`fresh`), and every
    answer is checked against its description and for secrets, as conftest's
    `app` does."""
    base = tmp_path_factory.mktemp("datasentinel")
    app = checked_app(state_settings(base, pg_cluster, redis_server.url), (ADMIN, VIEWER))
    with app.app_context():
        app.tokens = {
            role: sessions.create_token(accounts.get_user(username), "tests")
            for username, _, role in (ADMIN, VIEWER)
        }
    yield app
    close_app(app)


@pytest.fixture(autouse=True)
def fresh(app, redis_server):
    """An empty pool and no throttled login after each test, whose answers
    must all have matched their description and held no secret."""
    problems_of(app)
    yield
    with app.app_context():
        for source in store.all():
            store.delete(source["id"])
    redis.Redis.from_url(redis_server.url).flushall()
    problems = problems_of(app)
    assert not problems, problems


@pytest.fixture
def admin(app):
    return {"user-token": app.tokens["admin"]}


@pytest.fixture
def viewer(app):
    return {"user-token": app.tokens["viewer"]}


@pytest.fixture
def body(pg_cluster):
    """An add body for the test cluster, which Sentinel can reach."""
    return {
        "host": "127.0.0.1",
        "port": pg_cluster.port,
        "user": "postgres",
        "password": pg_cluster.password,
        "tags": TAGS,
    }


@pytest.fixture
def sales(client, admin, body):
    """A connection named `sales`, added through the API."""
    answer = client.post(f"{INSTANCES}/sales", json=body, headers=admin)
    assert answer.status_code == 201, answer.get_json()
    return "sales"


def show(client, headers, name="sales", **query):
    return client.get(f"{INSTANCES}/{name}", headers=headers, query_string=query)


def stored(app, name="sales"):
    with app.app_context():
        return store.get(name, show_password=True)


def names(app):
    with app.app_context():
        return [source["name"] for source in store.all()]


def error_of(answer, status):
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True))
    assert set(answer.get_json()) == {"error"}
    return answer.get_json()["error"]


# -- user-token ----------------------------------------------------------------------------------


def test_basic_credentials_give_a_user_token_that_opens_the_api(client):
    answer = client.post("/ds-api/user-token", headers=basic("alice", "alice-password"))
    assert answer.status_code == 201
    token = answer.get_json()["user-token"]
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    listed = client.get(INSTANCES, headers={"user-token": token})
    assert listed.status_code == 200 and listed.get_json() == []


def test_missing_or_wrong_basic_credentials_are_401(client):
    for headers in (
        {},
        basic("alice", "wrong-password"),
        basic("nobody", "alice-password"),
        basic("Not A Name!", "alice-password"),
        {"Authorization": "Basic not-base64"},
        {"Authorization": "Bearer alice-password"},
    ):
        answer = client.post("/ds-api/user-token", headers=headers)
        assert error_of(answer, 401), headers
        assert answer.headers["WWW-Authenticate"].startswith("Basic "), headers


def test_user_token_failures_are_throttled_like_login(client):
    for _ in range(5):
        client.post("/ds-api/user-token", headers=basic("alice", "wrong-password"))
    answer = client.post("/ds-api/user-token", headers=basic("alice", "alice-password"))
    assert error_of(answer, 429)
    assert int(answer.headers["Retry-After"]) > 0


# -- add -------------------------------------------------------------------------------------


def test_a_reachable_connection_is_added(client, admin, body, app):
    answer = client.post(f"{INSTANCES}/sales", json=body, headers=admin)
    assert answer.status_code == 201
    assert answer.get_json() == {"status": "Connection created and connected!"}
    assert names(app) == ["sales"]


def test_display_has_the_documents_keys_and_defaults(client, admin, sales, pg_cluster):
    answer = show(client, admin)
    assert answer.status_code == 200
    assert answer.get_json() == {
        "name": "sales",
        "host": "127.0.0.1",
        "port": pg_cluster.port,
        "user": "postgres",
        "password": store.secrets.obfuscate(pg_cluster.password),
        "tags": TAGS,
        "enabled": True,
        "connected": None,  # until the collection first tries it
        "collection-rate": "low",
        "samples": False,
        "lock-monitoring": True,
        "lock-monitoring-delay": 30,
        "table-monitoring": True,
        "query-monitoring": True,
        "query-monitoring-optimize": False,
        "query-monitoring-min-calls": 2,
        "query-monitoring-min-time": 1,
    }
    assert list(answer.get_json())[:8] == [
        "name", "host", "port", "user", "password", "tags", "enabled", "connected",
    ]  # fmt: skip


def test_tags_are_kept_as_the_models_key_value_pairs(client, admin, sales, app):
    assert stored(app)["tags"] == {"application": "sales", "environment": "production"}


def test_a_connection_at_a_closed_port_is_refused_and_nothing_added(client, admin, body, app):
    port = free_port()
    answer = client.post(f"{INSTANCES}/sales", json={**body, "port": port}, headers=admin)
    message = error_of(answer, 400)
    assert message.startswith(f"Connection not created: cannot connect to 127.0.0.1:{port}")
    assert "Connection refused" in message
    assert names(app) == []


def test_a_wrong_password_is_refused_without_repeating_it(client, admin, body, app):
    answer = client.post(
        f"{INSTANCES}/sales", json={**body, "password": "not-the-password"}, headers=admin
    )
    message = error_of(answer, 400)
    assert "password authentication failed" in message
    assert "not-the-password" not in message
    assert names(app) == []


def test_a_taken_name_is_409(client, admin, sales, body):
    answer = client.post(f"{INSTANCES}/sales", json={**body, "port": 1}, headers=admin)
    assert error_of(answer, 409) == "Connection 'sales' already exists."


def test_the_collection_options_are_taken_on_add(client, admin, body, app):
    options = {
        "collection-rate": "high",
        "samples": True,
        "lock-monitoring-delay": 60,
        "query-monitoring-min-calls": 10,
    }
    client.post(f"{INSTANCES}/sales", json={**body, **options}, headers=admin)
    shown = show(client, admin).get_json()
    assert {key: shown[key] for key in options} == options
    source = stored(app)
    assert (source["collection_rate"], source["samples"]) == ("high", True)
    assert (source["lock_monitoring_delay"], source["min_calls"]) == (60, 10)


def test_tags_may_be_empty_or_left_out(client, admin, body, app):
    client.post(f"{INSTANCES}/empty", json={**body, "tags": ""}, headers=admin)
    del body["tags"]
    client.post(f"{INSTANCES}/none", json=body, headers=admin)
    assert [show(client, admin, name).get_json()["tags"] for name in ("empty", "none")] == ["", ""]


def test_the_documents_example_body_is_400_for_its_trailing_comma(client, admin, app):
    answer = client.post(
        f"{INSTANCES}/sales",
        data=DOCUMENT_EXAMPLE,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert error_of(answer, 400) == (
        "The body is not valid JSON: a trailing comma before '}' (line 7, column 1)."
    )
    assert names(app) == []


def test_an_empty_body_is_400(client, admin):
    answer = client.post(f"{INSTANCES}/sales", data="", headers=admin)
    assert "body is empty" in error_of(answer, 400)


BAD_VALUES = [
    ({"port": "5432"}, "port: expected an integer"),
    ({"port": 70000}, "port: must be between 1 and 65535, got 70000"),
    ({"host": ""}, "host: must not be empty"),
    ({"samples": "yes"}, "samples: expected true or false"),
    ({"collection-rate": "medium"}, "collection-rate: expected low or high"),
    ({"lock-monitoring-delay": 0}, "lock-monitoring-delay: must be between 1 and 3600, got 0"),
    ({"tags": ["a=b"]}, "tags: expected a string of key=value pairs, comma separated"),
    ({"dbname": "sales"}, "dbname: unknown key"),
]


def test_a_bad_value_is_400_naming_the_key(client, admin, body, app):
    for change, message in BAD_VALUES:
        answer = client.post(f"{INSTANCES}/sales", json={**body, **change}, headers=admin)
        assert error_of(answer, 400) == message
    assert names(app) == []


def test_a_bad_value_in_an_update_is_400_naming_the_key_and_changes_nothing(client, admin, sales):
    before = show(client, admin).get_json()
    for change, message in BAD_VALUES:
        answer = client.put(f"{INSTANCES}/sales", json={"port": 6000, **change}, headers=admin)
        assert error_of(answer, 400) == message
    assert show(client, admin).get_json() == before


def test_a_missing_required_key_is_400_naming_it(client, admin, body):
    del body["user"]
    answer = client.post(f"{INSTANCES}/sales", json=body, headers=admin)
    assert error_of(answer, 400) == "user: required"


def test_a_body_that_is_not_an_object_is_400(client, admin):
    for sent in ("[]", '"sales"', "5", "null"):
        answer = client.post(f"{INSTANCES}/sales", data=sent, headers=admin)
        assert error_of(answer, 400) == "The body must be a JSON object of the connection's keys."


def test_malformed_tags_are_400_naming_the_bad_part(client, admin, body, app):
    for tags, bad in [
        ("environment", "'environment'"),
        ("=prod", "'=prod'"),
        ("a=1,,b=2", "''"),
        ("a=1,", "''"),
    ]:
        answer = client.post(f"{INSTANCES}/sales", json={**body, "tags": tags}, headers=admin)
        assert error_of(answer, 400) == f"tags: {bad} is not key=value"
    assert names(app) == []


def test_a_tag_given_twice_is_400(client, admin, body):
    answer = client.post(f"{INSTANCES}/sales", json={**body, "tags": "a=1,a=2"}, headers=admin)
    assert error_of(answer, 400) == "tags: the key 'a' is given twice"


def test_a_body_naming_another_connection_is_refused(client, admin, body, app):
    answer = client.post(f"{INSTANCES}/sales", json={**body, "name": "other"}, headers=admin)
    assert error_of(answer, 400).startswith("name: the connection is named by the URL ('sales')")
    assert names(app) == []


# -- display and list ------------------------------------------------------------------------


def test_show_sensitive_shows_the_password_to_an_admin(client, admin, sales):
    client.put(f"{INSTANCES}/sales", json={"password": NEW_PASSWORD}, headers=admin)
    assert show(client, admin, show_sensitive="true").get_json()["password"] == NEW_PASSWORD
    hidden = store.secrets.obfuscate(NEW_PASSWORD)
    assert show(client, admin, show_sensitive="false").get_json()["password"] == hidden


def test_a_viewer_reads_connections_but_not_their_passwords_in_clear(client, viewer, sales):
    assert show(client, viewer).status_code == 200
    assert client.get(INSTANCES, headers=viewer).status_code == 200
    assert "admin role" in error_of(show(client, viewer, show_sensitive="true"), 403)
    answer = client.get(INSTANCES, headers=viewer, query_string={"show_sensitive": "true"})
    assert error_of(answer, 403)


def test_show_sensitive_is_true_or_false(client, admin, sales):
    for value in ("1", "yes", "True"):
        answer = show(client, admin, show_sensitive=value)
        assert error_of(answer, 400) == "show_sensitive: expected true or false"


def test_the_list_holds_every_connection_as_displayed_by_name(client, admin, body):
    for name in ("zeta", "alpha"):
        client.post(f"{INSTANCES}/{name}", json=body, headers=admin)
    listed = client.get(INSTANCES, headers=admin).get_json()
    assert [connection["name"] for connection in listed] == ["alpha", "zeta"]
    assert listed[0] == show(client, admin, "alpha").get_json()
    assert all(connection["password"] != body["password"] for connection in listed)


# -- update, disable, enable, delete ---------------------------------------------------------


def test_an_update_changes_only_the_keys_given(client, admin, sales, pg_cluster):
    before = show(client, admin).get_json()
    changes = {"port": 6000, "collection-rate": "high", "tags": "environment=staging"}
    answer = client.put(f"{INSTANCES}/sales", json=changes, headers=admin)
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "Connection updated!"}
    assert show(client, admin).get_json() == {**before, **changes}


def test_a_displayed_connection_sent_back_whole_keeps_its_password(
    client, admin, sales, app, pg_cluster
):
    shown = show(client, admin).get_json()
    assert client.put(f"{INSTANCES}/sales", json=shown, headers=admin).status_code == 200
    assert stored(app)["password"] == pg_cluster.password


def test_an_update_renaming_the_connection_is_refused(client, admin, sales, app):
    answer = client.put(f"{INSTANCES}/sales", json={"name": "other"}, headers=admin)
    assert error_of(answer, 400).startswith("name: the connection is named by the URL")
    assert names(app) == ["sales"]


def test_an_update_with_bad_tags_changes_nothing(client, admin, sales):
    before = show(client, admin).get_json()
    answer = client.put(f"{INSTANCES}/sales", json={"port": 6000, "tags": "x"}, headers=admin)
    assert error_of(answer, 400) == "tags: 'x' is not key=value"
    assert show(client, admin).get_json() == before


def test_a_source_of_another_dialect_is_shown_and_updated_keeping_its_other_fields(
    client, admin, app
):
    with app.app_context():
        store.create(
            {
                "name": "billing",
                "host": "127.0.0.1",
                "user": "monitor",
                "dbname": "billing",
                "preset": "basic",
                "tags": {"team": "billing", "env": "prod"},
            }
        )
    assert show(client, admin, "billing").get_json()["tags"] == "env=prod,team=billing"
    assert client.put(f"{INSTANCES}/billing", json={"port": 6432}, headers=admin).status_code == 200
    source = stored(app, "billing")
    assert (source["port"], source["dbname"], source["preset"]) == (6432, "billing", "basic")
    assert source["tags"] == {"team": "billing", "env": "prod"}


def test_disable_then_enable(client, admin, sales):
    answer = client.patch(f"{INSTANCES}/sales/disable", headers=admin)
    assert answer.get_json() == {"status": "Connection disabled!"}
    assert show(client, admin).get_json()["enabled"] is False
    answer = client.patch(f"{INSTANCES}/sales/enable", headers=admin)
    assert answer.get_json() == {"status": "Connection enabled!"}
    assert show(client, admin).get_json()["enabled"] is True


def test_delete_removes_the_connection(client, admin, sales, app):
    answer = client.delete(f"{INSTANCES}/sales", headers=admin)
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "Connection deleted!"}
    assert names(app) == []
    assert error_of(show(client, admin), 404) == "Connection 'sales' does not exist."


# -- errors common to every route ------------------------------------------------------------

NAMED_ROUTES = [
    ("get", ""),
    ("put", ""),
    ("patch", "/disable"),
    ("patch", "/enable"),
    ("delete", ""),
]
WRITES = [("post", ""), *NAMED_ROUTES[1:]]


def call(client, method, suffix, headers, name="sales", body=None):
    kwargs = {"json": body if body is not None else {}} if method in ("post", "put") else {}
    return getattr(client, method)(f"{INSTANCES}/{name}{suffix}", headers=headers, **kwargs)


def test_an_unknown_name_is_404_on_every_route_but_add(client, admin):
    for method, suffix in NAMED_ROUTES:
        answer = call(client, method, suffix, admin, name="nowhere")
        assert error_of(answer, 404) == "Connection 'nowhere' does not exist.", method


@pytest.mark.parametrize(
    "headers",
    [{}, {"user-token": "snt_not-a-token"}, {"user-token": "0" * 64}, {"Token": "x"}],
    ids=["none", "unknown-token", "unknown-session", "other-header"],
)
def test_every_route_needs_a_user_token(client, headers):
    assert error_of(client.get(INSTANCES, headers=headers), 401)
    for method, suffix in WRITES[:1] + NAMED_ROUTES:
        assert error_of(call(client, method, suffix, headers), 401), (method, suffix)


def test_a_viewer_token_is_403_on_every_write(client, viewer, admin, body, sales):
    before = show(client, admin).get_json()
    for method, suffix in WRITES:
        answer = call(client, method, suffix, viewer, body={**body, "port": 1})
        assert "admin role" in error_of(answer, 403), (method, suffix)
    assert show(client, admin).get_json() == before


def test_unmatched_paths_under_ds_api_answer_an_error_object(client, admin):
    assert error_of(client.get("/ds-api/nothing", headers=admin), 404)
    assert error_of(client.post(INSTANCES, headers=admin), 405)


# -- hostile names ------------------------------------------------------------------------------

HOSTILE = ["sales'--", 'sa"les', "a;DROP TABLE pool_source", "sales%", "*", "%", "a b", "élan"]


def test_a_hostile_name_is_refused_on_add(client, admin, body, app):
    for name in [*HOSTILE, "x" * 129]:
        answer = client.post(f"{INSTANCES}/{name}", json=body, headers=admin)
        assert error_of(answer, 400).startswith("connection_name: "), name
    assert names(app) == []


def test_a_name_clients_resolve_away_is_refused_on_add(client, admin, body, app):
    for name in ("..", "."):
        answer = client.post(f"{INSTANCES}/{name}", json=body, headers=admin)
        assert error_of(answer, 400) == f"connection_name: {name!r} cannot be used in a URL"
    assert names(app) == []


def test_a_name_with_a_slash_reaches_no_connection(client, admin, body, app):
    answer = client.post(f"{INSTANCES}/sales%2F..%2Fx", json=body, headers=admin)
    assert error_of(answer, 404)
    assert names(app) == []


def test_a_hostile_name_never_finds_another_connection(client, admin, body, app):
    client.post(f"{INSTANCES}/sales_eu", json=body, headers=admin)
    for pattern in ("sales%", "sales_e_", "sales_e%", "*", "%", "SALES_EU", "sales_eu ", "'"):
        assert error_of(show(client, admin, pattern), 404), pattern
        assert error_of(client.delete(f"{INSTANCES}/{pattern}", headers=admin), 404), pattern
    assert names(app) == ["sales_eu"]


def test_an_id_in_place_of_a_name_finds_no_connection(client, admin, sales, app):
    source_id = stored(app)["id"]
    assert error_of(show(client, admin, source_id), 404)
    assert error_of(client.delete(f"{INSTANCES}/{source_id}", headers=admin), 404)
    assert names(app) == ["sales"]


# -- secrets -----------------------------------------------------------------------------------


def test_passwords_are_never_logged_nor_notified(client, admin, body, app, caplog):
    caplog.set_level(logging.DEBUG)
    client.post(f"{INSTANCES}/sales", json={**body, "password": "refused-password"}, headers=admin)
    client.post(f"{INSTANCES}/sales", json=body, headers=admin)
    client.put(f"{INSTANCES}/sales", json={"password": NEW_PASSWORD}, headers=admin)
    client.delete(f"{INSTANCES}/sales", headers=admin)
    with app.app_context():
        messages = [item["message"] for item in notifications.recent()]
    assert messages[:3] == [
        "Connection sales deleted",
        "Connection sales updated",
        "Connection sales created",
    ]
    for password in ("refused-password", body["password"], NEW_PASSWORD):
        assert password not in caplog.text
        assert not any(password in message for message in messages)
