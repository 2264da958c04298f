"""The API contract as code: /openapi.json describes every route and only
routes that exist, its schemas are valid JSON Schema, and a plugin added as
a folder plus one line of the plugin list is served, described, navigable,
scheduled and discovered."""

import http.client
import json
import re
import textwrap
import urllib.request

import jsonschema
import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from sentinel import contract, create_app, jobs, plugins, state

SAMPLE_VALUES = {"integer": "1", "number": "1.5", "uuid": "5f0c7a9e-2f4b-4c1e-9a8d-3b6e1f2a4c5d"}


def test_openapi_is_served_without_a_session(client):
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    assert document["openapi"] == "3.1.0"
    assert "/activity/kill" in document["paths"]
    assert document["paths"]["/activity/kill"]["post"]["security"] == [{"session": []}]


def test_every_registered_route_is_described(app):
    assert contract.undescribed_routes(app) == []


def test_a_route_without_a_description_is_found(app):
    @app.get("/undescribed")
    def undescribed():
        return {}

    assert contract.undescribed_routes(app) == ["GET /undescribed"]


def sample_path(path, parameters):
    """The path with each {parameter} replaced by a value of its type."""
    kinds = {
        p["name"]: p["schema"].get("format") or p["schema"].get("type")
        for p in parameters
        if p["in"] == "path"
    }
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_VALUES.get(kinds[m.group(1)], "x"), path)


def test_every_described_route_exists(app):
    adapter = app.url_map.bind("sentinel.test")
    document = contract.openapi(app, "test")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            concrete = sample_path(path, operation.get("parameters", []))
            try:
                endpoint, _ = adapter.match(concrete, method=method.upper())
            except (NotFound, MethodNotAllowed):
                pytest.fail(f"{method.upper()} {path} is described but not served")
            assert operation["operationId"].endswith(endpoint.replace(".", "_"))


def schemas_of(node):
    """Every schema held in an OpenAPI document, its components included."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            yield node["schema"]
        for key, value in node.items():
            if key != "schema":
                yield from schemas_of(value)
    elif isinstance(node, list):
        for value in node:
            yield from schemas_of(value)


def test_every_schema_is_valid_json_schema(app):
    document = contract.openapi(app, "test")
    found = list(schemas_of(document["paths"])) + list(document["components"]["schemas"].values())
    assert len(found) > 100
    for schema in found:
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_operation_answers_something_described(app):
    document = contract.openapi(app, "test")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], f"{method} {path}"
            assert any(status < "400" for status in operation["responses"]), f"{method} {path}"


# -- a plugin is its folder and one line ----------------------------------------------------

HELLO = {
    "__init__.py": '''
        """A plugin written by the test."""

        from .. import Periodic, Plugin
        from . import api, tasks, web

        PLUGIN = Plugin(
            name="hello",
            api=api.blueprint,
            web=web.blueprint,
            nav="Hello",
            periodic=(Periodic(tasks.greet, interval=30),),
        )
    ''',
    "api.py": """
        from flask import Blueprint, Response, g

        from ...answers import error_body
        from ...auth.access import session_required
        from ...contract import STRING, describe, record

        blueprint = Blueprint("hello", __name__, url_prefix="/hello")
        # This API family answers its errors in plain text.
        error_body(
            blueprint, lambda status, message, error: Response(message, mimetype="text/plain")
        )


        @blueprint.get("")
        @session_required
        @describe("Greets the signed-in user", answers={200: record(hello=STRING)})
        def hello():
            return {"hello": g.username}
    """,
    "web.py": """
        from flask import Blueprint

        from ...auth.access import signed_in
        from ...contract import HTML, STRING, describe

        blueprint = Blueprint("hello_ui", __name__, url_prefix="/ui/hello")


        @blueprint.get("/")
        @signed_in
        @describe("The Hello page", answers={200: (HTML, STRING)})
        def page():
            return "<p>Hello</p>"
    """,
    "tasks.py": """
        def greet():
            return "hello"
    """,
}


@pytest.fixture
def hello_plugin(tmp_path, monkeypatch):
    folder = tmp_path / "plugins" / "hello"
    folder.mkdir(parents=True)
    for name, text in HELLO.items():
        (folder / name).write_text(textwrap.dedent(text))
    monkeypatch.setattr(plugins, "__path__", [*plugins.__path__, str(folder.parent)])
    monkeypatch.setattr(plugins, "PLUGINS", [*plugins.PLUGINS, "hello"])  # the one line


def test_a_plugin_is_its_folder_and_one_line_of_the_list(hello_plugin, settings, make_user):
    app = create_app(settings)
    try:
        client = app.test_client()
        make_user()
        login = client.post("/login", json={"username": "alice", "password": "alice-password"})
        headers = {"X-Session": login.get_json()["session"]}

        assert client.get("/hello", headers=headers).get_json() == {"hello": "alice"}
        assert "hello" in client.get("/discover").get_json()["plugins"]
        assert contract.undescribed_routes(app) == []
        assert "/hello" in client.get("/openapi.json").get_json()["paths"]
        assert ("Hello", "hello_ui.page") in app.extensions["sentinel.nav"]
        names = {job.name for job in jobs.periodic_jobs(app.extensions["sentinel.plugins"])}
        assert "sentinel.plugins.hello.tasks.greet" in names
        # Its errors in its own words, through the one error handler.
        missing = client.get("/hello/nowhere", headers=headers)
        assert (missing.status_code, missing.mimetype) == (404, "text/plain")
        assert missing.get_data(as_text=True) == "URL not found."
        unauthorized = client.get("/hello")
        assert unauthorized.status_code == 406
        assert unauthorized.get_data(as_text=True) == "Parameter 'X-Session' is malformed."
    finally:
        app.extensions["sentinel.postgres"].close()
        state.database.close_all()


def test_a_request_line_too_long_is_answered_414_as_described(service):
    value = "9" * 5000
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        connection.request("GET", f"/monitoring/history?limit={value}")
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status == 414, body
    assert answer.getheader("Content-Type").startswith("text/html")
    with urllib.request.urlopen(service.url + "/openapi.json", timeout=10) as document:
        description = json.load(document)
    described = description["paths"]["/monitoring/history"]["get"]["responses"]["414"]
    assert "text/html" in described["content"]
