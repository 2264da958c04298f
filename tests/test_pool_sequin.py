"""The pool through Sequin's `postgres_databases` API: databases registered
with a real publication and logical slot of the test cluster once every
check passes, each failing check made real, answers and errors in Sequin's
shapes."""

import secrets
import uuid

import pytest

from sentinel.dev import sandbox
from sentinel.pool import store

API = "/api/postgres_databases"


class Replication:
    """A database of the test cluster ready for Sequin: a role allowed to
    CONNECT to it (and one that is not), a publication and a logical slot,
    and a second database with a slot of its own."""

    def __init__(self, cluster):
        self.cluster = cluster
        suffix = uuid.uuid4().hex[:10]
        self.dbname = f"sequin_{suffix}"
        self.other_dbname = f"sequin_other_{suffix}"
        self.user = f"sequin_{suffix}"
        self.outsider = f"sequin_outsider_{suffix}"
        self.password = secrets.token_urlsafe(12)  # 16 characters: shown `abc************z`
        self.publication = f"pub_{suffix}"
        self.slot = f"slot_{suffix}"
        self.other_slot = f"slot_other_{suffix}"

    def create(self):
        run = self.cluster.execute
        for role in (self.user, self.outsider):
            run(f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (self.password,))
        for dbname in (self.dbname, self.other_dbname):
            run(f'CREATE DATABASE "{dbname}"')
        run(f'REVOKE CONNECT ON DATABASE "{self.dbname}" FROM PUBLIC')
        run(f'GRANT CONNECT ON DATABASE "{self.dbname}" TO "{self.user}"')
        run(f'CREATE PUBLICATION "{self.publication}" FOR ALL TABLES', dbname=self.dbname)
        for slot, dbname in ((self.slot, self.dbname), (self.other_slot, self.other_dbname)):
            run("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,), dbname)
        return self

    def drop(self):
        run = self.cluster.execute
        for slot in (self.slot, self.other_slot):
            run(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s",
                (slot,),
            )
        for dbname in (self.dbname, self.other_dbname):
            run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            run(f'DROP DATABASE IF EXISTS "{dbname}"')
        for role in (self.user, self.outsider):
            run(f'DROP ROLE IF EXISTS "{role}"')

    def body(self, name="orders", **changes):
        """A create body for this database, `changes` applied (None removes a key)."""
        body = {
            "name": name,
            "hostname": "127.0.0.1",
            "port": self.cluster.port,
            "database": self.dbname,
            "username": self.user,
            "password": self.password,
            "ssl": False,  # the test cluster has no certificate
            "replication_slots": [{"publication_name": self.publication, "slot_name": self.slot}],
        }
        body.update(changes)
        return {key: value for key, value in body.items() if value is not None}

    def url(self, user=None, password=None, dbname=None, tail=""):
        return (
            f"postgresql://{user or self.user}:{password or self.password}"
            f"@127.0.0.1:{self.cluster.port}/{dbname or self.dbname}{tail}"
        )


@pytest.fixture(scope="module")
def replication(pg_cluster):
    ready = Replication(pg_cluster).create()
    yield ready
    ready.drop()


class Sequin:
    """A Sequin client: a bearer token of its own, JSON bodies."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path="", **kwargs):
        return self.client.get(API + path, headers=self.headers, **kwargs)

    def post(self, path="", body=None, **kwargs):
        return self.client.post(API + path, json=body, headers=self.headers, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.client.patch(API + path, json=body, headers=self.headers, **kwargs)

    def put(self, path, body, **kwargs):
        return self.client.put(API + path, json=body, headers=self.headers, **kwargs)

    def delete(self, path):
        return self.client.delete(API + path, headers=self.headers)


@pytest.fixture
def sequin(client, make_token):
    return Sequin(client, make_token())


@pytest.fixture
def registered(sequin, replication):
    """The database `orders`, registered with its slot."""
    answer = sequin.post(body=replication.body())
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def slots(replication):
    return {
        "replication_slots": [
            {"publication_name": replication.publication, "slot_name": replication.slot}
        ]
    }


def refusal(answer):
    """(status, validation_errors) of a 422."""
    body = answer.get_json()
    return answer.status_code, body.get("validation_errors")


# -- create ----------------------------------------------------------------------------------


def test_a_database_with_a_real_slot_is_registered_in_sequins_shape(sequin, replication):
    answer = sequin.post(body=replication.body())
    assert answer.status_code == 201
    database = answer.get_json()
    uuid.UUID(database["id"])
    slot = database.pop("replication_slots")
    assert database == {
        "id": database["id"],
        "name": "orders",
        "hostname": "127.0.0.1",
        "port": replication.cluster.port,
        "database": replication.dbname,
        "username": replication.user,
        "password": replication.password[:3] + "*" * 12 + replication.password[-1],
        "ssl": False,
        "ipv6": False,
        "use_local_tunnel": False,
        "pool_size": 10,
        "queue_interval": 1000,
        "queue_target": 50,
    }
    assert slot == [
        {
            "id": slot[0]["id"],
            "publication_name": replication.publication,
            "slot_name": replication.slot,
            "status": "active",
        }
    ]


def test_a_url_gives_the_connection_and_port_5432_when_it_has_none(sequin, replication):
    answer = sequin.post(
        body=replication.body(
            url=replication.url(),
            **dict.fromkeys(("hostname", "port", "database", "username", "password")),
        )
    )
    assert answer.status_code == 201, answer.get_json()
    database = answer.get_json()
    assert (database["hostname"], database["port"]) == ("127.0.0.1", replication.cluster.port)
    assert (database["database"], database["username"]) == (replication.dbname, replication.user)
    shown = sequin.get("/orders", query_string={"show_sensitive": "true"}).get_json()
    assert shown["password"] == replication.password


def test_a_url_is_percent_decoded_as_libpq_reads_it(sequin, replication):
    encoded = "".join(f"%{ord(char):02X}" for char in replication.password)
    url = replication.url(password=encoded)
    answer = sequin.post(body={"name": "orders", "url": url, "ssl": False, **slots(replication)})
    assert answer.status_code == 201, answer.get_json()


def test_a_url_with_connection_params_is_refused(sequin, replication):
    answer = sequin.post(body=replication.body(url=replication.url()))
    assert answer.status_code == 422
    assert answer.get_json()["summary"] == (
        "Bad connection details. If `url` is specified, no other connection params are allowed"
    )
    assert sequin.get().get_json() == {"data": []}


def test_a_url_missing_parts_names_them(sequin, replication):
    url = f"postgresql://127.0.0.1:{replication.cluster.port}"
    answer = sequin.post(body={"name": "orders", "url": url, "replication_slots": []})
    assert refusal(answer)[0] == 422
    summary = answer.get_json()["summary"]
    assert summary.startswith("Parameters missing from `url`: database, username, password.")


def test_a_url_with_a_query_string_is_refused(sequin, replication):
    body = {"name": "orders", "url": replication.url(tail="?sslmode=require")}
    answer = sequin.post(body=body)
    assert refusal(answer) == (422, {"url": [answer.get_json()["summary"]]})
    assert "Query parameters are not allowed in `url`" in answer.get_json()["summary"]


def test_connection_fields_left_out_cannot_be_blank(sequin, replication):
    for field in ("hostname", "database", "username", "password"):
        answer = sequin.post(body=replication.body(**{field: None}))
        assert refusal(answer) == (422, {field: ["can't be blank"]}), field


def test_a_name_left_out_cannot_be_blank(sequin, replication):
    answer = sequin.post(body=replication.body(name=None))
    assert refusal(answer) == (422, {"name": ["can't be blank"]})


def test_create_needs_exactly_one_replication_slot(sequin, replication):
    slot = {"publication_name": replication.publication, "slot_name": replication.slot}
    for slots in (None, [], [slot, slot]):
        answer = sequin.post(body=replication.body(replication_slots=slots))
        assert refusal(answer) == (422, {"replication_slots": ["exactly one slot is required"]})
        assert "exactly one slot" in answer.get_json()["summary"]


def test_a_missing_publication_is_404_and_nothing_is_stored(sequin, replication):
    slot = {"publication_name": "no_such_publication", "slot_name": replication.slot}
    answer = sequin.post(body=replication.body(replication_slots=[slot]))
    assert answer.status_code == 404
    assert answer.get_json()["summary"].startswith(
        f"Not found: no publication 'no_such_publication' in the database '{replication.dbname}'"
    )
    assert sequin.get().get_json() == {"data": []}


def test_a_missing_slot_is_404(sequin, replication):
    slot = {"publication_name": replication.publication, "slot_name": "no_such_slot"}
    answer = sequin.post(body=replication.body(replication_slots=[slot]))
    assert answer.status_code == 404
    assert answer.get_json()["summary"].startswith("Not found: no replication slot 'no_such_slot'")


def test_a_slot_of_another_database_is_refused(sequin, replication):
    slot = {"publication_name": replication.publication, "slot_name": replication.other_slot}
    answer = sequin.post(body=replication.body(replication_slots=[slot]))
    assert answer.status_code == 422
    assert answer.get_json()["summary"] == (
        f"The replication slot '{replication.other_slot}' belongs to the database"
        f" '{replication.other_dbname}', not to '{replication.dbname}'."
    )


def test_a_role_without_connect_privilege_is_refused(sequin, replication):
    answer = sequin.post(body=replication.body(username=replication.outsider))
    assert answer.status_code == 422
    summary = answer.get_json()["summary"]
    assert summary.startswith(
        f"The role '{replication.outsider}' may not CONNECT to the database '{replication.dbname}'"
    )


def test_a_wrong_password_is_refused_without_echoing_it(sequin, replication):
    answer = sequin.post(body=replication.body(password="not-the-password"))
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["code"] == "unreachable"
    assert body["summary"].startswith(f"Could not log in to the database '{replication.dbname}'")
    assert "password authentication failed" in body["summary"]
    assert "not-the-password" not in answer.get_data(as_text=True)
    assert sequin.get().get_json() == {"data": []}


def test_a_closed_port_is_refused_as_unreachable(sequin, replication):
    answer = sequin.post(body=replication.body(port=sandbox.free_port()))
    assert answer.status_code == 422
    assert answer.get_json()["summary"].startswith("The server is not reachable at 127.0.0.1:")


def test_ssl_defaults_to_true_and_is_refused_by_a_server_without_it(sequin, replication):
    answer = sequin.post(body=replication.body(ssl=None))
    assert answer.status_code == 422
    assert "server does not support SSL" in answer.get_json()["summary"]


def test_a_taken_name_is_422_as_sequin_says_it(sequin, replication, registered):
    answer = sequin.post(body=replication.body())
    assert refusal(answer) == (422, {"name": ["Database name must be unique"]})


def test_annotations_are_the_sources_tags(app, sequin, replication):
    body = replication.body(annotations={"team": "billing"})
    assert "annotations" not in sequin.post(body=body).get_json()
    with app.app_context():
        assert store.get("orders")["tags"] == {"team": "billing"}


def test_a_primary_given_on_create_needs_its_connection_fields(sequin, replication):
    answer = sequin.post(body=replication.body(primary={"hostname": "primary.example.com"}))
    assert refusal(answer) == (422, {"primary": ["database can't be blank"]})


# -- read ----------------------------------------------------------------------------------


def test_a_database_is_shown_by_id_and_by_name(sequin, registered):
    assert sequin.get(f"/{registered['id']}").get_json() == registered
    assert sequin.get("/orders").get_json() == registered
    assert sequin.get().get_json() == {"data": [registered]}


def test_the_password_shows_only_with_show_sensitive_exactly_true(sequin, replication, registered):
    for value in ("false", "1", "TRUE", "yes"):
        assert (
            sequin.get("/orders", query_string={"show_sensitive": value}).get_json() == registered
        )
    listed = sequin.get(query_string={"show_sensitive": "true"}).get_json()["data"]
    shown = sequin.get("/orders", query_string={"show_sensitive": "true"}).get_json()
    assert listed[0]["password"] == shown["password"] == replication.password


def test_a_source_of_another_dialect_shows_with_no_slot(app, sequin):
    with app.app_context():
        store.create({"name": "reports", "host": "db.example.com", "user": "monitor"})
    shown = sequin.get("/reports").get_json()
    assert (shown["replication_slots"], shown["ssl"], shown["port"]) == ([], False, 5432)


def test_an_unknown_database_is_404(sequin):
    for path in ("/nobody", f"/{uuid.uuid4()}"):
        answer = sequin.get(path)
        assert answer.status_code == 404
        assert answer.get_json()["summary"].startswith("Not found: ")


# -- update --------------------------------------------------------------------------------


def test_patch_changes_what_it_gives_and_keeps_the_port(sequin, replication, registered):
    answer = sequin.patch("/orders", {"hostname": "localhost", "ipv6": True})
    assert answer.status_code == 200
    changed = answer.get_json()
    assert (changed["hostname"], changed["ipv6"]) == ("localhost", True)
    assert changed["port"] == replication.cluster.port
    assert changed["replication_slots"] == registered["replication_slots"]


def test_put_is_a_partial_update_too(sequin, registered):
    changed = sequin.put(f"/{registered['id']}", {"name": "orders-eu"}).get_json()
    assert {**registered, "name": "orders-eu"} == changed


def test_a_password_sent_back_obfuscated_keeps_the_stored_one(sequin, replication, registered):
    sequin.patch("/orders", {"password": registered["password"]})
    shown = sequin.get("/orders", query_string={"show_sensitive": "true"}).get_json()
    assert shown["password"] == replication.password


def test_ssl_sent_back_unchanged_keeps_a_stricter_sslmode(app, sequin, registered):
    with app.app_context():
        store.update("orders", {"sslmode": "verify-full"})
    assert sequin.patch("/orders", {"ssl": True}).get_json()["ssl"] is True
    with app.app_context():
        assert store.get("orders")["sslmode"] == "verify-full"


def test_a_slot_changes_by_its_id_and_needs_it(sequin, registered):
    slot = registered["replication_slots"][0]
    answer = sequin.patch("/orders", {"replication_slots": [{"slot_name": slot["slot_name"]}]})
    assert refusal(answer) == (422, {"replication_slots": ["id can't be blank"]})
    answer = sequin.patch(
        "/orders", {"replication_slots": [{"id": slot["id"], "status": "disabled"}]}
    )
    assert answer.get_json()["replication_slots"] == [{**slot, "status": "disabled"}]


def test_an_update_by_url_replaces_the_connection(sequin, replication, registered):
    url = f"postgresql://someone:elsewhere-password@db.example.com/{replication.dbname}"
    changed = sequin.patch("/orders", {"url": url}).get_json()
    assert (changed["hostname"], changed["port"]) == ("db.example.com", 5432)
    assert changed["username"] == "someone"
    answer = sequin.patch("/orders", {"url": url, "port": 6432})
    assert answer.status_code == 422 and answer.get_json()["validation_errors"] == {}


def test_an_update_is_not_checked_against_the_server(sequin, registered):
    answer = sequin.patch("/orders", {"port": sandbox.free_port()})
    assert answer.status_code == 200


def test_a_rename_to_a_taken_name_is_422(app, sequin, registered):
    with app.app_context():
        store.create({"name": "reports", "host": "db.example.com", "user": "monitor"})
    answer = sequin.patch("/orders", {"name": "reports"})
    assert refusal(answer) == (422, {"name": ["Database name must be unique"]})


def test_a_refused_value_names_sequins_field(sequin, registered):
    answer = sequin.patch("/orders", {"hostname": ""})
    assert refusal(answer) == (422, {"hostname": ["can't be blank"]})
    answer = sequin.patch("/orders", {"port": 70000})
    assert refusal(answer) == (422, {"port": ["is invalid"]})


def test_a_primary_is_shown_without_its_password(sequin, registered):
    primary = {
        "hostname": "primary.example.com",
        "database": "app",
        "username": "u",
        "password": "p4ssword",
    }
    changed = sequin.patch("/orders", {"primary": primary}).get_json()
    assert changed["primary"] == {
        "hostname": "primary.example.com",
        "port": 5432,
        "database": "app",
        "username": "u",
        "ssl": True,
    }
    assert "primary" not in sequin.patch("/orders", {"primary": None}).get_json()


# -- delete, test_connection -----------------------------------------------------------------


def test_delete_answers_the_id_and_forgets_the_database(sequin, registered):
    answer = sequin.delete("/orders")
    assert answer.get_json() == {"success": True, "id": registered["id"]}
    assert sequin.get("/orders").status_code == 404
    assert sequin.delete("/orders").status_code == 404


def test_test_connection_succeeds_on_a_registered_database(sequin, registered):
    answer = sequin.post(f"/{registered['id']}/test_connection")
    assert (answer.status_code, answer.get_json()) == (200, {"success": True})


def test_test_connection_says_which_check_fails(sequin, registered):
    sequin.patch("/orders", {"password": "not-the-password"})
    answer = sequin.post("/orders/test_connection")
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["success"] is False
    assert "password authentication failed" in body["reason"]


def test_test_connection_of_an_unknown_database_is_404(sequin):
    assert sequin.post("/nobody/test_connection").status_code == 404


# -- who may, and how -------------------------------------------------------------------------


def test_without_one_valid_bearer_token_it_is_401(client, make_token):
    token = make_token()
    for authorization in (
        [],
        ["Bearer"],
        ["Bearer snt_not-a-token"],
        [f"Token {token}"],
        ["Basic dXNlcjpwYXNz"],
        [f"Bearer {token}", f"Bearer {token}"],
    ):
        answer = client.get(API, headers=[("Authorization", value) for value in authorization])
        assert answer.status_code == 401, authorization
        assert set(answer.get_json()) == {"summary"}


def test_a_viewer_reads_but_changes_nothing(client, make_token, replication, registered):
    viewer = Sequin(client, make_token("viewer", role="viewer"))
    assert viewer.get("/orders").status_code == 200
    assert viewer.get("/orders?show_sensitive=true").status_code == 403
    assert viewer.get("?show_sensitive=true").status_code == 403
    assert viewer.post("/orders/test_connection").status_code == 200
    assert viewer.post(body=replication.body(name="other")).status_code == 403
    assert viewer.patch("/orders", {"ipv6": True}).status_code == 403
    assert viewer.delete("/orders").status_code == 403
    assert set(viewer.delete("/orders").get_json()) == {"summary"}


def test_a_body_not_said_to_be_json_is_400(sequin, replication):
    import json

    answer = sequin.client.post(
        API,
        data=json.dumps(replication.body()),
        headers={**sequin.headers, "Content-Type": "text/plain"},
    )
    assert answer.status_code == 400
    assert answer.get_json() == {"summary": "Content-Type: application/json is required"}


def test_a_body_of_the_wrong_type_is_422_naming_the_field(sequin, replication):
    answer = sequin.post(body=replication.body(port="5432"))
    assert refusal(answer) == (422, {"port": ["is invalid"]})


def test_hostile_names_are_refused_on_create(sequin, replication):
    for name in ("ord'ers", "orders;drop", "ord%", "*", "a/b", "orders ", "ünïcode"):
        answer = sequin.post(body=replication.body(name=name))
        assert refusal(answer) == (422, {"name": ["is invalid"]}), name
    assert sequin.get().get_json() == {"data": []}


def test_hostile_names_find_no_other_database(sequin, registered):
    for path in (
        "/orders%25",
        "/ord_rs",
        "/%2A",
        "/orders%27",
        "/orders%2Fx",
        "/ORDERS",
        "/orders;",
    ):
        answer = sequin.get(path)
        assert answer.status_code == 404, path
        assert answer.get_json()["summary"].startswith("Not found: ")
