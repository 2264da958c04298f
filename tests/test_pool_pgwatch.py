"""The pool in pgwatch's dialect: its login, health checks, sources with
pgwatch's Go field names and plain-text errors, the connection test and the
metric catalog, against the real test cluster."""

import time
from urllib.parse import quote

import psycopg2.extensions
import pytest
from conftest import checked_app, close_app, problems_of, state_settings

from sentinel import create_app
from sentinel.auth import accounts, sessions
from sentinel.dev.sandbox import free_port
from sentinel.pool import probe, store

PASSWORD = "a-long-secret-password"  # a source's, never one of the test's own secrets
SHOWN = "a-l******************d"  # ...obfuscated by Sequin's rule
PGWATCH_KEYS = [
    "Name",
    "Group",
    "ConnStr",
    "Metrics",
    "MetricsStandby",
    "Kind",
    "IncludePattern",
    "ExcludePattern",
    "PresetMetrics",
    "PresetMetricsStandby",
    "IsEnabled",
    "IsSuperuser",
    "CustomTags",
    "HostConfig",
    "OnlyIfMaster",
]


# The module's users, made once: {(username, role): password}.
USERS = {("pgadmin", "admin"): "pgadmin-password", ("pgviewer", "viewer"): "pgviewer-password"}


@pytest.fixture(scope="module")
def app(tmp_path_factory, pg_cluster, redis_server):
    """One Sentinel for the module, its users and tokens made once: each test
    starts without sources (see `fresh`), so none depends on another."""
    base = tmp_path_factory.mktemp("pgwatch")
    users = [(username, password, role) for (username, role), password in USERS.items()]
    app = checked_app(state_settings(base, pg_cluster, redis_server.url), users)
    with app.app_context():
        app.tokens = {
            role: sessions.create_token(accounts.get_user(username), "tests")
            for username, role in USERS
        }
    yield app
    close_app(app)


@pytest.fixture(autouse=True)
def fresh(app):
    """Each test: no source at its start; every answer it got described, and
    none giving away a secret."""
    problems_of(app)
    yield
    with app.app_context():
        for source in store.all():
            store.delete(source["id"])
    problems = problems_of(app)
    assert not problems, problems


@pytest.fixture
def admin(app):
    return {"Token": app.tokens["admin"]}


@pytest.fixture
def viewer(app):
    return {"Token": app.tokens["viewer"]}


def new_source(
    name="sales", conn_str=f"postgresql://monitor:{PASSWORD}@db.example.com/sales", **more
):
    return {"Name": name, "ConnStr": conn_str, **more}


@pytest.fixture
def created(client, admin):
    """POST a source (the fields given) and answer it as GET shows it."""

    def create(**fields):
        body = new_source(**fields)
        answer = client.post("/source", json=body, headers=admin)
        assert answer.status_code == 201, answer.text
        return client.get(f"/source/{body['Name']}", headers=admin).get_json()

    return create


def cluster_conn_str(pg_cluster, password=None):
    password = pg_cluster.password if password is None else password
    return f"postgresql://postgres:{quote(password)}@127.0.0.1:{pg_cluster.port}/postgres"


def plain(answer, status):
    """The answer's text, after checking it is a plain-text failure of `status`."""
    assert answer.status_code == status, answer.text
    assert answer.mimetype == "text/plain"
    return answer.text


# -- login -----------------------------------------------------------------------------


def test_pgwatch_login_answers_a_token_in_plain_text_that_opens_its_routes(client):
    answer = client.post("/login", json={"user": "pgviewer", "password": "pgviewer-password"})
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    token = answer.text
    assert len(token) == 64 and int(token, 16) >= 0
    assert client.get("/source", headers={"Token": token}).get_json() == []


@pytest.mark.parametrize(
    "user, password",
    [("pgviewer", "wrong-password"), ("nobody", "pgviewer-password"), ("Alice!", "password")],
    ids=["wrong password", "unknown user", "a name no user can have"],
)
def test_pgwatch_login_with_wrong_credentials_is_401_in_plain_text(client, user, password):
    answer = client.post("/login", json={"user": user, "password": password})
    assert plain(answer, 401) == "Invalid user or password."


def test_temboard_login_still_answers_json(client):
    answer = client.post("/login", json={"username": "pgadmin", "password": "wrong-password"})
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "Invalid username/password."}
    answer = client.post("/login", json={"username": "pgadmin", "password": "pgadmin-password"})
    assert set(answer.get_json()) == {"session"}


# -- health ------------------------------------------------------------------------------


def test_liveness_and_readiness_answer_ok_without_a_token(client):
    assert client.get("/liveness").get_json() == {"status": "ok"}
    answer = client.get("/readiness")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}


def test_readiness_is_503_busy_while_redis_is_down(app):
    # The same state, with Redis at a closed port.
    closed = f"redis://127.0.0.1:{free_port()}/0"
    without_redis = create_app({**app.config["SENTINEL"], "redis_url": closed})
    try:
        answer = without_redis.test_client().get("/readiness")
        assert answer.status_code == 503 and answer.get_json() == {"status": "busy"}
    finally:
        without_redis.extensions["sentinel.postgres"].close()
        without_redis.extensions["sentinel.redis"].close()


# -- authentication ----------------------------------------------------------------------

ROUTES = [
    ("get", "/source"),
    ("post", "/source"),
    ("put", "/source"),
    ("delete", "/source?name=sales"),
    ("get", "/source/sales"),
    ("put", "/source/sales"),
    ("delete", "/source/sales"),
    ("post", "/test-connect"),
    ("get", "/metric"),
    ("get", "/preset"),
]
WRITES = [(method, path) for method, path in ROUTES if method != "get"]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_but_health_needs_a_token(client, method, path):
    assert plain(getattr(client, method)(path), 401) == "Invalid token."
    answer = getattr(client, method)(path, headers={"Token": "snt_not-a-token"})
    assert plain(answer, 401) == "Invalid token."


@pytest.mark.parametrize("method, path", WRITES)
def test_a_viewer_changes_nothing(client, viewer, created, method, path):
    created()
    answer = getattr(client, method)(path, headers=viewer, json=new_source(Group="other"))
    assert "admin role" in plain(answer, 403)
    assert client.get("/source/sales", headers=viewer).get_json()["Group"] == "default"


def test_the_token_is_taken_from_a_header_in_any_case_or_the_query(client, admin):
    token = admin["Token"]
    assert client.get("/source", headers={"token": token}).status_code == 200
    assert client.get("/source", headers={"TOKEN": token}).status_code == 200
    assert client.get(f"/source?Token={token}").status_code == 200


# -- sources ---------------------------------------------------------------------------


def test_a_new_source_is_201_and_listed_with_pgwatchs_names_and_defaults(client, admin):
    answer = client.post("/source", json=new_source(), headers=admin)
    assert answer.status_code == 201 and answer.text == ""
    listed = client.get("/source", headers=admin)
    assert listed.mimetype == "application/json"
    (shown,) = listed.get_json()
    assert list(shown) == PGWATCH_KEYS
    assert shown == {
        "Name": "sales",
        "Group": "default",
        "ConnStr": f"postgresql://monitor:{SHOWN}@db.example.com:5432/sales?sslmode=prefer",
        "Metrics": {},
        "MetricsStandby": {},
        "Kind": "postgres",
        "IncludePattern": "",
        "ExcludePattern": "",
        "PresetMetrics": "",
        "PresetMetricsStandby": "",
        "IsEnabled": True,
        "IsSuperuser": False,
        "CustomTags": {},
        "HostConfig": {},
        "OnlyIfMaster": False,
    }


def test_every_field_given_is_kept(created):
    fields = {
        "Group": "cluster-s3",
        "Kind": "postgres-continuous-discovery",
        "IncludePattern": "^app_",
        "ExcludePattern": "_test$",
        "PresetMetrics": "standard",
        "MetricsStandby": {"kpi": 120},
        "IsEnabled": False,
        "CustomTags": {"env": "prod", "team": "dba"},
        "HostConfig": {"DcsType": "etcd", "DcsEndpoints": ["http://10.0.0.1:2379"]},
        "OnlyIfMaster": True,
    }
    shown = created(**fields)
    assert {name: shown[name] for name in fields} == fields


def test_nil_maps_as_go_sends_them_are_empty(created):
    shown = created(Metrics=None, MetricsStandby=None, CustomTags=None, HostConfig=None)
    assert [shown[name] for name in ("Metrics", "MetricsStandby", "CustomTags", "HostConfig")] == [
        {},
        {},
        {},
        {},
    ]


def test_a_taken_name_is_409_source_already_exists(client, admin, created):
    created()
    answer = client.post("/source", json=new_source(), headers=admin)
    assert plain(answer, 409) == "source already exists"


def test_the_password_is_obfuscated_unless_an_admin_asks_to_see_it(client, admin, viewer, created):
    created()
    assert SHOWN in client.get("/source/sales", headers=viewer).get_json()["ConnStr"]
    shown = client.get("/source/sales?show_sensitive=true", headers=admin).get_json()
    assert shown["ConnStr"].startswith(f"postgresql://monitor:{PASSWORD}@")
    listed = client.get("/source?show_sensitive=true", headers=admin).get_json()
    assert listed[0]["ConnStr"] == shown["ConnStr"]
    for path in ("/source?show_sensitive=true", "/source/sales?show_sensitive=true"):
        assert "admin role" in plain(client.get(path, headers=viewer), 403)


def test_an_edit_put_back_whole_keeps_the_password_and_still_logs_in(
    app, client, admin, created, pg_cluster
):
    shown = created(conn_str=cluster_conn_str(pg_cluster))
    assert pg_cluster.password not in shown["ConnStr"]
    shown["Group"] = "edited"
    answer = client.put("/source/sales", json=shown, headers=admin)
    assert answer.status_code == 200 and answer.text == ""
    assert client.get("/source/sales", headers=admin).get_json() == shown
    with app.app_context():
        kept = store.get("sales", show_password=True)
    assert kept["password"] == pg_cluster.password
    probe.check(probe.parameters(kept))


@pytest.mark.parametrize("host", ["::1", "fe80::1%eth0", "/var/run/postgresql", "db-1.example"])
def test_odd_characters_of_a_connection_string_come_back_the_same(client, admin, created, host):
    password = "p@ss:w/o?r#d%20+*"
    conn_str = f"host={host} port=6432 dbname='my db' user=o\\'neil password='{password}'"
    created(conn_str=conn_str)
    shown = client.get("/source/sales?show_sensitive=true", headers=admin).get_json()
    assert shown["ConnStr"].startswith("postgresql://o%27neil:")
    assert psycopg2.extensions.parse_dsn(shown["ConnStr"]) == {
        "host": host,
        "port": "6432",
        "dbname": "my db",
        "user": "o'neil",
        "password": password,
        "sslmode": "prefer",
    }


def test_a_connection_string_without_database_names_the_users_as_libpq_does(created):
    shown = created(conn_str="postgresql://monitor@db.example.com")
    assert shown["ConnStr"] == "postgresql://monitor@db.example.com:5432/monitor?sslmode=prefer"


def test_put_on_the_collection_changes_the_source_its_name_names(client, admin, created):
    created()
    answer = client.put("/source", json={"Name": "sales", "IsEnabled": False}, headers=admin)
    assert answer.status_code == 200
    shown = client.get("/source/sales", headers=admin).get_json()
    assert shown["IsEnabled"] is False and shown["Group"] == "default"
    answer = client.put("/source", json={"Name": "nowhere", "IsEnabled": False}, headers=admin)
    assert "nowhere" in plain(answer, 404)
    assert plain(client.put("/source", json={"Group": "x"}, headers=admin), 400) == "Name: required"


def test_put_whose_body_name_differs_from_the_url_is_400(client, admin, created):
    created()
    answer = client.put("/source/sales", json=new_source(name="other"), headers=admin)
    assert plain(answer, 400) == "Name: the body's Name differs from the URL's"
    assert client.get("/source/other", headers=admin).status_code == 404


def test_an_unknown_source_is_404_in_plain_text(client, admin):
    assert "nowhere" in plain(client.get("/source/nowhere", headers=admin), 404)
    assert plain(client.put("/source/nowhere", json={}, headers=admin), 404)
    assert plain(client.delete("/source/nowhere", headers=admin), 404)
    assert plain(client.delete("/source?name=nowhere", headers=admin), 404)


def test_a_source_is_deleted_by_path_or_by_query(client, admin, created):
    created(name="one")
    created(name="two")
    assert client.delete("/source/one", headers=admin).status_code == 200
    assert client.delete("/source?name=two", headers=admin).status_code == 200
    assert client.get("/source", headers=admin).get_json() == []
    assert plain(client.delete("/source", headers=admin), 400) == "name: required"


def test_a_preset_and_custom_metrics_together_are_400(client, admin, created):
    body = new_source(PresetMetrics="basic", Metrics={"kpi": 60})
    answer = client.post("/source", json=body, headers=admin)
    assert plain(answer, 400).startswith("PresetMetrics, Metrics: ")
    created(PresetMetrics="basic")
    answer = client.put("/source/sales", json={"Metrics": {"kpi": 60}}, headers=admin)
    assert plain(answer, 400).startswith("PresetMetrics, Metrics: ")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"PresetMetrics": "nosuch"}, "PresetMetrics: no preset 'nosuch'"),
        ({"Metrics": {"nosuch": 60}}, "Metrics: no metric 'nosuch'"),
        ({"Metrics": {"kpi": 0}}, "Metrics: kpi: must be between 1 and 86400 s, got 0"),
        ({"Metrics": {"kpi": 1.5}}, "Metrics: not a value"),
        ({"Kind": "oracle"}, "Kind: not a value"),
        ({"IsEnabled": "yes"}, "IsEnabled: not a value"),
        ({"Name": 12}, "Name: not a value"),
        ({"ConnStr": None}, "ConnStr: not a value"),
        ({"ConnStr": "host=db.example.com"}, "ConnStr: a user is required"),
        ({"ConnStr": "user=monitor"}, "ConnStr: a host is required"),
        ({"ConnStr": "host=h user=u connect_timeout=3"}, "ConnStr: connect_timeout is not kept"),
        ({"ConnStr": "host=h user=u sslmode=sometimes"}, "ConnStr sslmode: expected one of"),
        ({"ConnStr": "postgresql://u@h:99999/d"}, "ConnStr port: must be between 1 and 65535"),
        ({"ConnStr": "postgresql://u@h1:1,h2:2/d"}, "ConnStr port: expected a number"),
        ({"ConnStr": "host=h\x00 user=u"}, "ConnStr: a NUL character"),
        ({"ConnStr": "not a connection string"}, "ConnStr: not a libpq connection string ("),
    ],
)
def test_a_refused_value_is_400_naming_the_pgwatch_field(client, admin, fields, message):
    answer = client.post("/source", json={**new_source(), **fields}, headers=admin)
    assert plain(answer, 400).startswith(message)
    assert client.get("/source", headers=admin).get_json() == []


def test_a_refused_connection_string_never_echoes_its_password(client, admin):
    body = new_source(conn_str="host=h user=u password=hidden words")
    text = plain(client.post("/source", json=body, headers=admin), 400)
    assert text == "ConnStr: not a libpq connection string (a URL or key=value pairs)"


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", '"sales"', '{"Name": "sales",}', '{"Name": "sales"}'],
    ids=["not json", "a list", "a string", "a trailing comma", "no ConnStr"],
)
def test_a_body_that_is_no_source_is_400_in_plain_text(client, admin, body):
    answer = client.post("/source", data=body, headers=admin, content_type="application/json")
    assert plain(answer, 400)


@pytest.mark.parametrize(
    "name",
    ["../etc", "a b", "x'; DROP TABLE pool_source; --", "sales\x00", "sal*", "名前", "x" * 129],
)
def test_hostile_names_are_refused_and_find_nothing(client, admin, created, name):
    created()
    answer = client.post("/source", json=new_source(name=name), headers=admin)
    assert plain(answer, 400).startswith("Name: ")
    quoted = quote(name, safe="")
    assert client.get(f"/source/{quoted}", headers=admin).status_code == 404
    assert client.put(f"/source/{quoted}", json={}, headers=admin).status_code == 404
    assert client.delete(f"/source?name={quoted}", headers=admin).status_code == 404
    assert [shown["Name"] for shown in client.get("/source", headers=admin).get_json()] == ["sales"]


# -- connection test -----------------------------------------------------------------------


@pytest.mark.parametrize("form", ["url", "keywords"])
def test_a_connection_string_that_logs_in_is_200_empty(client, admin, pg_cluster, form):
    conninfo = cluster_conn_str(pg_cluster) if form == "url" else pg_cluster.dsn()
    answer = client.post("/test-connect", data=conninfo, headers=admin)
    assert answer.status_code == 200 and answer.text == ""


def test_a_closed_port_is_400_with_the_drivers_reason_quickly(client, admin):
    conninfo = f"postgresql://postgres:whatever@127.0.0.1:{free_port()}/postgres"
    started = time.monotonic()
    text = plain(client.post("/test-connect", data=conninfo, headers=admin), 400)
    assert time.monotonic() - started < probe.CONNECT_TIMEOUT
    assert "Connection refused" in text or "connection refused" in text.lower()


def test_a_wrong_password_is_400_without_the_password(client, admin, pg_cluster):
    wrong = "wrong-secret-password"
    text = plain(
        client.post("/test-connect", data=cluster_conn_str(pg_cluster, wrong), headers=admin), 400
    )
    assert "password authentication failed" in text
    assert wrong not in text


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"user=postgres"])
def test_a_body_that_is_no_connection_string_is_400(client, admin, body):
    assert plain(client.post("/test-connect", data=body, headers=admin), 400)


# -- catalog ----------------------------------------------------------------------------


def test_metrics_are_keyed_by_name_with_sql_by_minimum_major_version(client, admin):
    metrics = client.get("/metric", headers=admin).get_json()
    assert len(metrics) >= 30
    for metric in metrics.values():
        assert set(metric) == {
            "SQLs",
            "InitSQL",
            "NodeStatus",
            "Gauges",
            "IsInstanceLevel",
            "StorageName",
            "Description",
        }
        assert metric["SQLs"] and all(version.isdigit() for version in metric["SQLs"])


def test_presets_are_keyed_by_name_with_intervals_of_known_metrics(client, admin):
    presets = client.get("/preset", headers=admin).get_json()
    metrics = client.get("/metric", headers=admin).get_json()
    assert {"minimal", "basic", "standard", "exhaustive"} <= set(presets)
    for preset in presets.values():
        assert set(preset) == {"Description", "Metrics"}
        assert set(preset["Metrics"]) <= set(metrics)
        assert all(isinstance(seconds, int) for seconds in preset["Metrics"].values())
