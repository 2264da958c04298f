"""PgConf: PostgreSQL's settings read, changed with ALTER SYSTEM, all or
nothing, with their history, on real clusters."""

import pytest
import requests

from sentinel import create_app
from tests.polling import wait_for

AUTO_CONF = "SELECT pg_read_file('postgresql.auto.conf')"


def auto_conf(cluster):
    return cluster.execute(AUTO_CONF)[0][0]


def show(cluster, name):
    """The setting as a new session sees it (after the reload reached the postmaster)."""
    return cluster.execute(f"SHOW {name}")[0][0]


def settings_by_name(groups):
    return {row["name"]: row for group in groups for row in group["rows"]}


def post(client, headers, *items):
    body = {"settings": [{"name": name, "setting": value} for name, value in items]}
    return client.post("/pgconf/configuration", json=body, headers=headers)


@pytest.fixture
def headers(auth):
    return auth.headers()


@pytest.fixture
def restore(pg_cluster):
    """Names of settings of the shared cluster to reset after the test."""
    names = []
    yield names
    for name in names:
        pg_cluster.execute(f"ALTER SYSTEM RESET {name}")
    pg_cluster.execute("SELECT pg_reload_conf()")


@pytest.fixture
def own(own_cluster, settings, make_user):
    """(app, headers) of a Sentinel watching the test's own cluster."""
    app = create_app({**settings, "pg_dsn": own_cluster.dsn()})
    make_user()
    client = app.test_client()
    answer = client.post("/login", json={"username": "alice", "password": "alice-password"})
    yield app, {"X-Session": answer.get_json()["session"]}
    app.extensions["sentinel.postgres"].close()


# -- reading ----------------------------------------------------------------------------


def test_settings_come_by_category_then_name_with_the_agents_types(client, headers):
    groups = client.get("/pgconf/configuration", headers=headers).get_json()
    names = [group["category"] for group in groups]
    assert names == sorted(names) and len(names) > 20
    for group in groups:
        rows = [row["name"] for row in group["rows"]]
        assert rows == sorted(rows)
    rows = settings_by_name(groups)
    assert len(rows) > 300
    work_mem = rows["work_mem"]
    assert work_mem["setting"] == "4096" and work_mem["setting_raw"] == "4MB"
    assert (work_mem["unit"], work_mem["min_val"], work_mem["vartype"]) == ("kB", "64", "integer")
    assert work_mem["pending_restart"] is False
    assert work_mem["desc"].startswith("Sets the maximum memory to be used for query workspaces.")
    assert rows["wal_level"]["enumvals"] == "{minimal,replica,logical}"
    assert rows["autovacuum"]["desc"] == "Starts the autovacuum subprocess. "
    # Where each value comes from.
    assert rows["max_connections"]["source"] == "configuration file"
    assert rows["max_connections"]["sourcefile"].endswith("/postgresql.conf")
    assert isinstance(rows["max_connections"]["sourceline"], int)


def test_the_settings_sentinels_connection_sets_show_the_servers_value(client, headers):
    rows = settings_by_name(client.get("/pgconf/configuration", headers=headers).get_json())
    # Sentinel's pool runs with statement_timeout=5s and lock_timeout=1s: not the server's.
    assert rows["statement_timeout"]["setting_raw"] == "0"
    assert rows["lock_timeout"]["source"] == "default"
    assert rows["application_name"]["setting"] == ""


@pytest.mark.parametrize("text", ["WORK_MEM", "query workspaces", "it's", "100%", "_mem", "a'b%_"])
def test_the_filter_is_text_matched_in_names_and_descriptions(client, headers, text):
    answer = client.get("/pgconf/configuration", query_string={"filter": text}, headers=headers)
    assert answer.status_code == 200
    rows = settings_by_name(answer.get_json())
    for row in rows.values():
        assert text.lower() in (row["name"] + row["desc"]).lower()
    if text in ("WORK_MEM", "query workspaces", "_mem"):
        assert "work_mem" in rows
    if text == "_mem":
        assert "shared_buffers" not in rows  # an underscore is no wildcard


def test_an_empty_filter_is_malformed(client, headers):
    answer = client.get("/pgconf/configuration?filter=", headers=headers)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": "Parameter 'filter' is malformed."}


def test_categories_are_sorted(client, headers):
    categories = client.get("/pgconf/configuration/categories", headers=headers).get_json()
    assert categories["categories"] == sorted(categories["categories"])
    assert "Client Connection Defaults / Locale and Formatting" in categories["categories"]


@pytest.mark.parametrize(
    "path",
    [
        "Client%20Connection%20Defaults%20%2F%20Locale%20and%20Formatting",
        "Client+Connection+Defaults+%2F+Locale+and+Formatting",
        "Client Connection Defaults / Locale and Formatting",
    ],
)
def test_a_category_with_slashes_and_spaces(client, headers, path):
    answer = client.get(f"/pgconf/configuration/category/{path}", headers=headers)
    assert answer.status_code == 200
    [group] = answer.get_json()
    assert group["category"] == "Client Connection Defaults / Locale and Formatting"
    assert "DateStyle" in {row["name"] for row in group["rows"]}


@pytest.mark.parametrize("name", ["Nope", "autovacuum", "Resource+Usage+%2F+Memory%2B"])
def test_an_unknown_category_is_404(client, headers, name):
    answer = client.get(f"/pgconf/configuration/category/{name}", headers=headers)
    assert answer.status_code == 404
    assert "No category named" in answer.get_json()["error"]


def test_the_temboard_uis_plus_encoding_through_gunicorn(service, ui_user_factory):
    username = ui_user_factory(service)
    login = requests.post(
        f"{service.url}/login",
        json={"username": username, "password": "user-password"},
        timeout=10,
    )
    headers = {"X-Session": login.json()["session"]}
    answer = requests.get(
        f"{service.url}/pgconf/configuration/category/Resource+Usage+%2F+Memory",
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()[0]["category"] == "Resource Usage / Memory"
    missing = requests.get(
        f"{service.url}/pgconf/configuration/category/Resource%2BUsage", headers=headers, timeout=10
    )
    assert missing.status_code == 404  # %2B is a plus, not a space


def test_every_route_needs_a_session(client):
    for path in ("/pgconf/configuration", "/pgconf/configuration/status"):
        answer = client.get(path)
        assert answer.status_code == 406
        assert answer.get_json() == {"error": "Parameter 'X-Session' is malformed."}


# -- changing ------------------------------------------------------------------------------


def test_a_reload_setting_takes_effect_and_is_recorded(client, headers, pg_cluster, restore):
    restore.append("work_mem")
    answer = post(client, headers, ("work_mem", "8MB"))
    assert answer.status_code == 200
    assert answer.get_json() == {
        "settings": [
            {"name": "work_mem", "setting": "8MB", "previous_setting": "4MB", "restart": False}
        ]
    }
    wait_for(lambda: show(pg_cluster, "work_mem") == "8MB", what="the reload")
    assert "work_mem = '8MB'" in auto_conf(pg_cluster)
    notes = [n["message"] for n in client.get("/notifications", headers=headers).get_json()]
    assert "Setting work_mem changed from '4MB' to '8MB'" in notes
    # The same value again changes nothing, as the agent answers.
    assert post(client, headers, ("work_mem", "8192kB")).get_json() == {"settings": []}


def test_an_empty_setting_resets_it(client, headers, pg_cluster, restore):
    restore.append("work_mem")
    post(client, headers, ("work_mem", "8MB"))
    answer = post(client, headers, ("work_mem", ""))
    assert answer.get_json()["settings"] == [
        {"name": "work_mem", "setting": "", "previous_setting": "8MB", "restart": False}
    ]
    assert "work_mem" not in auto_conf(pg_cluster)
    wait_for(lambda: show(pg_cluster, "work_mem") == "4MB", what="the reload")


def test_a_quote_in_a_value_is_kept_as_it_is(client, headers, pg_cluster, restore):
    restore.append("application_name")
    answer = post(client, headers, ("application_name", "it's; DROP TABLE x"))
    assert answer.get_json()["settings"][0]["setting"] == "it's; DROP TABLE x"
    written = pg_cluster.execute(
        "SELECT setting FROM pg_file_settings WHERE name = 'application_name'"
    )
    assert written == [("it's; DROP TABLE x",)]


def test_a_restart_setting_waits_for_the_restart(own, own_cluster):
    app, headers = own
    client = app.test_client()
    answer = post(client, headers, ("shared_buffers", "256MB"))
    assert answer.get_json()["settings"] == [
        {"name": "shared_buffers", "setting": "256MB", "previous_setting": "128MB", "restart": True}
    ]
    status = wait_for(
        lambda: (
            client.get("/pgconf/configuration/status", headers=headers).get_json()[
                "restart_pending"
            ]
            and client.get("/pgconf/configuration/status", headers=headers).get_json()
        ),
        what="the pending restart",
    )
    assert [row["name"] for row in status["restart_changes"]] == ["shared_buffers"]
    assert status["restart_changes"][0]["pending_restart"] is True
    history = client.get("/pgconf/configuration/history", headers=headers).get_json()
    assert history["changes"][0]["state"] == "pending_restart"
    # A waiting setting is no broken line of the files.
    assert client.get("/pgconf/configuration/files", headers=headers).get_json()["valid"]

    own_cluster.stop()
    own_cluster.start()
    changes = client.get("/pgconf/configuration/history", headers=headers).get_json()["changes"]
    assert [(c["name"], c["state"], c["outside"]) for c in changes] == [
        ("shared_buffers", "applied", False)
    ]
    assert client.get("/pgconf/configuration/status", headers=headers).get_json() == {
        "restart_pending": False,
        "restart_changes": [],
    }


@pytest.mark.parametrize(
    "items, error",
    [
        ([("no_such_thing", "1")], "no_such_thing: no such setting"),
        ([("work_mem", "abc")], "work_mem: 'abc' is not a number"),
        ([("work_mem", "10kB")], "work_mem: 10kB is below the minimum 64kB"),
        ([("work_mem", "3TB")], "work_mem: 3TB is above the maximum 2147483647kB"),
        ([("work_mem", "8mb")], "work_mem: '8mb': the units of this setting are B, kB, MB, GB, TB"),
        ([("shared_buffers", "64kB")], "shared_buffers: 64kB is below the minimum 128kB"),
        ([("statement_timeout", "5 parsecs")], "statement_timeout: '5 parsecs': the units"),
        ([("max_connections", "10MB")], "max_connections: '10MB': this setting takes no unit"),
        ([("max_connections", "2.5")], "max_connections: '2.5' is not a whole number"),
        ([("enable_seqscan", "maybe")], "enable_seqscan: 'maybe' is not a boolean"),
        ([("enable_seqscan", "o")], "enable_seqscan: 'o' is not a boolean"),
        ([("enable_seqscan", "on ")], "enable_seqscan: 'on ' is not a boolean"),
        ([("wal_level", "bogus")], "wal_level: 'bogus' is not one of minimal, replica, logical"),
        ([("wal_level", " replica")], "wal_level: ' replica' is not one of"),
        ([("TimeZone", "Not/AZone")], 'TimeZone: invalid value for parameter "TimeZone"'),
        ([("block_size", "4096")], "block_size: cannot be changed"),
        ([("data_directory", "/tmp")], "data_directory: cannot be set in the configuration"),
        ([("application_name", "a\x00b")], "application_name: a value cannot hold a NUL"),
        ([("work_mem", "8MB"), ("WORK_MEM", "9MB")], "work_mem: given twice"),
        # All or nothing: the valid first one is not written either.
        ([("work_mem", "8MB"), ("TimeZone", "Not/AZone")], "TimeZone: invalid value"),
        ([("work_mem", "8MB"), ("enable_seqscan", "maybe")], "enable_seqscan: 'maybe'"),
    ],
)
def test_refused_values_are_400_and_change_nothing(client, headers, pg_cluster, items, error):
    before = auto_conf(pg_cluster)
    answer = post(client, headers, *items)
    assert answer.status_code == 400
    assert answer.get_json()["error"].startswith(error)
    assert auto_conf(pg_cluster) == before
    assert show(pg_cluster, "work_mem") == "4MB"
    assert client.get("/pgconf/configuration/history", headers=headers).get_json() == {
        "changes": []
    }


def test_a_write_postgresql_refuses_late_undoes_the_earlier_ones(client, headers, pg_cluster):
    # log_timezone cannot be tried in a session (sighup): ALTER SYSTEM itself
    # refuses it, after work_mem was written; work_mem goes back.
    before = auto_conf(pg_cluster)
    answer = post(client, headers, ("work_mem", "8MB"), ("log_timezone", "Not/AZone"))
    assert answer.status_code == 400
    assert answer.get_json()["error"].startswith("log_timezone: invalid value")
    assert auto_conf(pg_cluster) == before


@pytest.mark.parametrize(
    "body, error",
    [
        ({}, "Parameter 'settings' not sent."),
        ({"settings": "x"}, "Parameter 'settings' is malformed."),
        ({"settings": [{"name": "work_mem"}]}, "Parameter 'settings' is malformed."),
        ({"settings": [{"name": "work_mem", "setting": 8}]}, "Parameter 'settings' is malformed."),
        ({"settings": [{"name": "", "setting": "8MB"}]}, "Parameter 'settings' is malformed."),
    ],
)
def test_malformed_items_are_406(client, headers, pg_cluster, body, error):
    before = auto_conf(pg_cluster)
    answer = client.post("/pgconf/configuration", json=body, headers=headers)
    assert answer.status_code == 406
    assert answer.get_json() == {"error": error}
    assert auto_conf(pg_cluster) == before


def test_a_viewer_cannot_change_settings(client, auth, pg_cluster):
    auth.login("alice")
    viewer = {"X-Session": auth.login("victor", "victor-password", role="viewer")}
    before = auto_conf(pg_cluster)
    assert post(client, viewer, ("work_mem", "8MB")).status_code == 403
    assert client.get("/pgconf/configuration", headers=viewer).status_code == 200
    assert auto_conf(pg_cluster) == before


# -- history, revert, outside changes, broken files ---------------------------------------


def test_history_lists_changes_newest_first_and_a_revert_puts_back(
    client, headers, pg_cluster, restore
):
    restore.extend(["work_mem", "random_page_cost"])
    post(client, headers, ("work_mem", "8MB"))
    post(client, headers, ("random_page_cost", "1.1"))
    changes = client.get("/pgconf/configuration/history", headers=headers).get_json()["changes"]
    assert [(c["name"], c["previous"], c["value"], c["username"]) for c in changes] == [
        ("random_page_cost", "4", "1.1", "alice"),
        ("work_mem", "4MB", "8MB", "alice"),
    ]
    answer = client.post(
        f"/pgconf/configuration/history/{changes[1]['id']}/revert", headers=headers
    )
    assert answer.status_code == 200
    assert answer.get_json()["settings"][0]["name"] == "work_mem"
    # work_mem came from the defaults: the revert takes its line away.
    assert "work_mem" not in auto_conf(pg_cluster)
    wait_for(lambda: show(pg_cluster, "work_mem") == "4MB", what="the reload")
    latest = client.get("/pgconf/configuration/history", headers=headers).get_json()["changes"][0]
    assert (latest["name"], latest["previous"], latest["value"]) == ("work_mem", "8MB", "")
    notes = [n["message"] for n in client.get("/notifications", headers=headers).get_json()]
    assert any("(revert of change" in note for note in notes)


@pytest.mark.parametrize("change_id", ["999", "0", "99999999999999999999999"])
def test_reverting_an_unknown_change_is_404(client, headers, change_id):
    answer = client.post(f"/pgconf/configuration/history/{change_id}/revert", headers=headers)
    assert answer.status_code == 404


def test_a_change_made_outside_sentinel_shows_in_the_history(client, headers, pg_cluster, restore):
    restore.append("work_mem")
    client.get("/pgconf/configuration/history", headers=headers)  # Sentinel looks once
    pg_cluster.execute("ALTER SYSTEM SET work_mem = '16MB'")
    pg_cluster.execute("SELECT pg_reload_conf()")
    wait_for(lambda: show(pg_cluster, "work_mem") == "16MB", what="the reload")

    def outside():
        changes = client.get("/pgconf/configuration/history", headers=headers).get_json()
        return changes["changes"]

    [change] = wait_for(outside, what="the outside change")
    assert change["outside"] is True and change["username"] is None
    assert (change["name"], change["previous"], change["value"]) == ("work_mem", "4MB", "16MB")
    # Reverting it writes the old value back.
    client.post(f"/pgconf/configuration/history/{change['id']}/revert", headers=headers)
    wait_for(lambda: show(pg_cluster, "work_mem") == "4MB", what="the revert")


def test_the_workers_watch_records_a_change_undone_before_anyone_looked(
    app, client, headers, pg_cluster, restore
):
    from sentinel.plugins.pgconf import tasks

    def outside(value):
        pg_cluster.execute(f"ALTER SYSTEM SET work_mem = '{value}'")
        pg_cluster.execute("SELECT pg_reload_conf()")
        wait_for(lambda: show(pg_cluster, "work_mem") == value, what="the reload")

    restore.append("work_mem")
    client.get("/pgconf/configuration/history", headers=headers)
    outside("24MB")
    with app.app_context():
        tasks.watch()
    outside("4MB")
    changes = client.get("/pgconf/configuration/history", headers=headers).get_json()["changes"]
    assert [(c["previous"], c["value"], c["outside"]) for c in changes] == [
        ("24MB", "4MB", True),
        ("4MB", "24MB", True),
    ]


def test_a_broken_postgresql_conf_is_shown(own, own_cluster):
    app, headers = own
    client = app.test_client()
    assert client.get("/pgconf/configuration/files", headers=headers).get_json()["valid"] is True
    with open(own_cluster.data / "postgresql.conf", "a") as conf:
        conf.write("work_mem = 'lots'\n")
    own_cluster.execute("SELECT pg_reload_conf()")
    files = client.get("/pgconf/configuration/files", headers=headers).get_json()
    assert files["valid"] is False
    [broken] = [line for line in files["lines"] if line["broken"]]
    assert broken["file"].endswith("/postgresql.conf")
    assert (broken["name"], broken["setting"]) == ("work_mem", "lots")
    assert broken["error"] == "setting could not be applied"
    assert broken["reason"] == "'lots' is not a number"

    with open(own_cluster.data / "postgresql.conf", "a") as conf:
        conf.write("this is not a setting\n")
    files = client.get("/pgconf/configuration/files", headers=headers).get_json()
    assert [line["error"] for line in files["lines"] if line["broken"]] == ["syntax error"]


@pytest.mark.parametrize(
    "value, shown",
    [("OFF", "off"), ("fal", "off"), ("Y", "on"), ("1", "on"), ("of", "off")],
)
def test_booleans_as_postgresql_reads_them(client, headers, pg_cluster, restore, value, shown):
    restore.append("enable_seqscan")
    answer = post(client, headers, ("enable_seqscan", value))
    assert answer.status_code == 200
    changed = answer.get_json()["settings"]
    assert [change["setting"] for change in changed] == ([] if shown == "on" else [value])
    assert show(pg_cluster, "enable_seqscan") == shown


def test_outside_changes_are_found_with_the_state_in_postgresql(
    settings, postgres_state, pg_cluster, restore
):
    from sentinel.auth import accounts

    app = create_app({**settings, "database": postgres_state})
    try:
        with app.app_context():
            accounts.create_user("alice", "alice-password", "admin")
        client = app.test_client()
        login = client.post("/login", json={"username": "alice", "password": "alice-password"})
        headers = {"X-Session": login.get_json()["session"]}
        restore.append("work_mem")
        client.get("/pgconf/configuration/history", headers=headers)
        pg_cluster.execute("ALTER SYSTEM SET work_mem = '16MB'")
        pg_cluster.execute("SELECT pg_reload_conf()")
        wait_for(lambda: show(pg_cluster, "work_mem") == "16MB", what="the reload")
        changes = wait_for(
            lambda: client.get("/pgconf/configuration/history", headers=headers).get_json()[
                "changes"
            ],
            what="the outside change",
        )
        assert [(c["name"], c["value"], c["outside"]) for c in changes] == [
            ("work_mem", "16MB", True)
        ]
    finally:
        app.extensions["sentinel.postgres"].close()
