"""The API contract as code.

Each route carries its description beside it, with `@describe(...)`: what it
does, its query parameters, its request body and its answers, as JSON Schema
(the dialect of OpenAPI 3.1). The same schemas validate what the route
receives, so the description and the behaviour cannot drift, and
`openapi(app)` assembles them, with the rules of Flask's URL map, into the
document served at /openapi.json.

A request that breaks its route's schema is refused in the agent's words:
406 `Parameter 'x' is malformed.` (or `not sent.` for an absent one), after
400 `Invalid json format` for a body that is not JSON at all, or JSON that
Sentinel will not take (nested too deep, a lone surrogate, NaN). Parameters
are checked in the order the schema lists them, so the first bad one is named.
"""

import functools
import json
import math
import re
from dataclasses import dataclass, field

import jsonschema
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import BadJSON, Invalid, Malformed, NotSent, Unauthorized

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
HTML = "text/html"

# -- schema helpers ------------------------------------------------------------------

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
ANY = {}


def nullable(schema):
    """`schema`, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def array(items):
    return {"type": "array", "items": items}


def record(properties=None, *, optional=None, **more):
    """An object whose listed properties are all present (and `optional` ones
    may be); other properties are allowed."""
    properties = {**(properties or {}), **more}
    schema = {
        "type": "object",
        "required": list(properties),
        "properties": {**properties, **(optional or {})},
    }
    return schema


def mapping(values):
    """An object of any keys, each holding a `values`."""
    return {"type": "object", "additionalProperties": values}


# Named schemas (those that refer to themselves): {name: schema}, served under
# components/schemas and referred to as {"$ref": "#/components/schemas/<name>"}.
COMPONENTS = {}


def component(name, schema):
    """Register a named schema; returns the reference to it."""
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = record(error=STRING)

# Statuses the contract adds by itself, and what they mean.
REASONS = {
    101: "Switching Protocols (to a WebSocket)",
    200: "OK",
    201: "Created",
    302: "Redirect (to the sign-in page)",
    400: "Malformed request (e.g. `Invalid json format`), or a value refused",
    401: "Missing, unknown or expired credentials",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "A parameter is malformed or not sent",
    409: "Conflict with the current state",
    422: "Refused: the fields named are invalid",
    413: "Request body too large",
    414: "Request line too long (over 4094 bytes): gunicorn's own HTML page",
    429: "Too many failed attempts (see Retry-After)",
    503: "PostgreSQL, or Sentinel's state database, is unavailable",
    504: "PostgreSQL did not answer in time (statement or lock timeout)",
}

# -- what a route declares ------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    summary: str
    answers: dict
    query: dict = field(default_factory=dict)
    body: dict | None = None
    absent: type = NotSent
    errors: tuple = ()
    description: str = ""
    form: dict | None = None
    malformed: type = Malformed
    error: dict | None = None  # {media type: schema} of failures; default {"error"}
    body_media: str = "application/json"


def describe(
    summary,
    *,
    answers=None,
    query=None,
    body=None,
    absent=NotSent,
    errors=(),
    description="",
    form=None,
    malformed=Malformed,
    error=None,
    body_media=JSON,
):
    """Describe a route and validate what it receives from the description.

    `answers`: {status: JSON schema, or None for a JSON body not described
    further, or (media type, schema), or a list of those for an answer in
    several media types} of its successful answers; `errors`:
    the statuses of its failures (their body is the API's error object);
    `query`: {name: schema} of optional query parameters, converted from
    text by their type and passed to the view as keyword arguments; `body`:
    the schema of a JSON body (or, with `body_media="text/plain"`, of a body
    of text taken whatever its Content-Type), passed as `body`; `absent`: the error for a
    required body property that was not sent, and `malformed` for a value
    the schema refuses (both called with the parameter's name); `form`:
    {name: schema} of an HTML form's fields (validated by the form itself);
    `error`: {media type: schema} of the failures' body, for an API family
    that answers its errors in its own dialect (see answers.error_body).
    """
    contract = Contract(
        summary=summary,
        answers=answers if answers is not None else {200: None},
        query=query or {},
        body=body,
        absent=absent,
        errors=tuple(errors),
        description=description,
        form=form,
        malformed=malformed,
        error=error,
        body_media=body_media,
    )

    query_validators = {name: Validator(schema) for name, schema in contract.query.items()}
    body_validator = Validator(body) if body is not None else None

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            for name, validator in query_validators.items():
                kwargs[name] = parse_query(name, request.args.get(name), validator, malformed)
            if body_validator is not None:
                given = read_json() if body_media == JSON else read_text()
                kwargs["body"] = parse_body(given, body_validator, absent, malformed)
            return view(*args, **kwargs)

        wrapper.contract = contract
        return wrapper

    return decorator


def marks(**attributes):
    """Set attributes on a view for the description (e.g. how it authenticates),
    through any decorator that keeps its wrapped function's attributes."""

    def decorator(view):
        for name, value in attributes.items():
            setattr(view, name, value)
        return view

    return decorator


# -- validating what a route receives -----------------------------------------------------

_INTEGER_TEXT = re.compile(r"-?[0-9]+")


# Deeper than any body a route takes (3 levels), and far from the depth where
# validating a value or writing it out (both recurse once a level) would fail.
MAX_DEPTH = 32


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check_tree(value):
    """BadJSON for what JSON parses but nothing downstream can take: nesting
    deeper than MAX_DEPTH, and strings with a lone surrogate (an escaped
    "\\ud800" alone is no Unicode text: it has no UTF-8 to hash, log or send
    to PostgreSQL). Walked with a list, not recursion, for the same reason."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                raise BadJSON("Invalid json format: a string holds a lone surrogate") from None
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BadJSON(f"Invalid json format: nested deeper than {MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _read_body():
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body has no length to refuse it by: werkzeug stops reading
        # it at the limit without a word, so reaching the limit is going past it.
        raise RequestEntityTooLarge()
    return raw


def read_text():
    """The request body as text, whatever its Content-Type."""
    try:
        return _read_body().decode()
    except UnicodeDecodeError:
        raise Invalid("The body is not UTF-8 text.") from None


def read_json():
    """The request body as JSON, whatever its Content-Type (as the agent reads it)."""
    raw = _read_body()
    if not raw.strip():
        raise BadJSON()
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadJSON() from None
    _check_tree(value)
    return value


# JSON Schema takes 1.0 for an integer; a JSON client sending a pid or a
# count as 1.0 has made a mistake worth telling, so only true integers are.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, instance: type(instance) is int
    ),
)


def _from_text(raw, schema):
    """A query parameter's text as the JSON value its schema's type wants, or
    the text itself when it does not convert (the schema then refuses it)."""
    kind = schema.get("type")
    if kind == "integer" and _INTEGER_TEXT.fullmatch(raw):
        return int(raw)
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def parse_query(name, raw, validator, malformed=Malformed):
    """A query parameter's value (None when absent), or `malformed`."""
    if raw is None:
        return None
    value = _from_text(raw, validator.schema)
    if not validator.is_valid(value):
        raise malformed(name)
    return value


def parse_body(body, validator, absent=NotSent, malformed=Malformed):
    """`body` when it satisfies the validator's schema, else the error naming
    the first property (in the schema's order) that is absent or malformed."""
    if validator.is_valid(body):
        return body
    names = list(validator.schema.get("properties", {}))
    bad = {}
    for error in validator.iter_errors(body):
        if error.path:
            bad.setdefault(error.path[0], malformed)
        elif error.validator == "required" and isinstance(body, dict):
            for name in error.validator_value:
                if name not in body:
                    bad[name] = absent
        else:  # the body as a whole is of the wrong kind
            bad.setdefault(names[0] if names else "body", malformed)
    first = min(bad, key=lambda name: names.index(name) if name in names else len(names))
    raise bad[first](first)


# -- the OpenAPI document ------------------------------------------------------------------

_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
_CONVERTER_SCHEMAS = {
    "int": INTEGER,
    "float": NUMBER,
    "string": {"type": "string", "pattern": "^[^/]+$"},
    "path": {"type": "string", "minLength": 1},
    "uuid": {"type": "string", "format": "uuid"},
}
SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "header", "name": "X-Session"},
    "agentKey": {"type": "apiKey", "in": "header", "name": "X-TemBoard-Agent-Key"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "sentinel"},
    # The pool's dialects: an API token, or the session their own login route gives.
    "userToken": {"type": "apiKey", "in": "header", "name": "user-token"},
    "tokenHeader": {"type": "apiKey", "in": "header", "name": "Token"},
    "tokenQuery": {"type": "apiKey", "in": "query", "name": "Token"},
    "bearer": {"type": "http", "scheme": "bearer"},
    "basic": {"type": "http", "scheme": "basic"},
}
SECURITY = {
    "session": [{"session": []}],
    "session-or-key": [{"session": []}, {"agentKey": []}],
    "cookie": [{"cookie": []}],
    "user-token": [{"userToken": []}],
    "token": [{"tokenHeader": []}, {"tokenQuery": []}],
    "bearer": [{"bearer": []}],
    "basic": [{"basic": []}],
}
# The schemes where a request without valid credentials is refused with 401.
TOKEN_AUTH = ("user-token", "token", "bearer", "basic")


def openapi_path(rule):
    """(OpenAPI path, its path parameters) of a werkzeug rule."""
    parameters = []

    def replace(match):
        converter = match.group("converter") or "default"
        schema = _CONVERTER_SCHEMAS.get(converter, _CONVERTER_SCHEMAS["string"])
        parameters.append(
            {"name": match.group("name"), "in": "path", "required": True, "schema": schema}
        )
        return "{" + match.group("name") + "}"

    return _ARGUMENT.sub(replace, rule.rule), parameters


def _content(answer):
    if isinstance(answer, list):
        return {media: _content((media, schema))[media] for media, schema in answer}
    media, schema = answer if isinstance(answer, tuple) else (JSON, answer)
    return {media: {"schema": schema}} if schema is not None else {media: {}}


def _error_content(path, contract):
    if contract.error is not None:
        return {media: {"schema": schema} for media, schema in contract.error.items()}
    # The web UI's paths answer a browser with an error page.
    if path == "/ui" or path.startswith(("/ui/", "/static/")):
        return {JSON: {"schema": ERROR}, HTML: {"schema": STRING}}
    return {JSON: {"schema": ERROR}}


def _error_statuses(contract, view):
    statuses = set(contract.errors)
    auth = getattr(view, "auth", None)
    if auth in ("session", "session-or-key"):
        statuses |= {401, 406}
    if auth == "cookie":
        statuses.add(302)
    if auth in TOKEN_AUTH:
        statuses.add(Unauthorized.status)
    if getattr(view, "role", None):
        statuses.add(403)
    if contract.query:
        statuses.add(contract.malformed.status)
    if contract.body is not None:
        statuses |= {BadJSON.status, Invalid.status, contract.absent.status, 413}
        statuses.add(contract.malformed.status)
    return statuses


def operation(rule, view, contract, method):
    path, parameters = openapi_path(rule)
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in contract.query.items()
    ]
    answers = {
        str(status): {"description": REASONS.get(status, "OK"), "content": _content(answer)}
        if status < 300 or status >= 400
        else {"description": REASONS.get(status, "Redirect")}
        for status, answer in contract.answers.items()
    }
    statuses = _error_statuses(contract, view)
    if parameters:
        statuses.add(414)  # a long enough value makes the request line too long
    for status in sorted(statuses - set(contract.answers)):
        if status == 302:
            answers["302"] = {"description": REASONS[302]}
        elif status == 414:
            answers["414"] = {"description": REASONS[414], "content": {HTML: {"schema": STRING}}}
        else:
            answers[str(status)] = {
                "description": REASONS.get(status, "Error"),
                "content": _error_content(path, contract),
            }
    described = {
        "operationId": f"{method.lower()}_{rule.endpoint.replace('.', '_')}",
        "summary": contract.summary,
        "tags": [getattr(view, "tag", None) or rule.endpoint.split(".")[0]],
        "responses": answers,
    }
    if contract.description:
        described["description"] = contract.description
    if parameters:
        described["parameters"] = parameters
    auth = getattr(view, "auth", None)
    described["security"] = SECURITY.get(auth, [])
    role = getattr(view, "role", None)
    if role:
        # The role a user needs, for clients and for the check that every write has one.
        described["x-role"] = role
        described["description"] = (
            f"{described.get('description', '')}\n\nNeeds the {role} role.".strip()
        )
    if contract.body is not None:
        content = {contract.body_media: {"schema": contract.body}}
        described["requestBody"] = {"required": True, "content": content}
    if contract.form is not None:
        form = record(contract.form)
        described["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": form}},
        }
    return path, described


STATIC = Contract(
    summary="A static file of the web UI",
    answers={200: ("*/*", None)},
    errors=(404,),
)


def contract_of(app, rule):
    """The contract of a rule's view: its own, the static files' one, or None."""
    view = app.view_functions[rule.endpoint]
    if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
        return STATIC
    return getattr(view, "contract", None)


def methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def openapi(app, version):
    """The OpenAPI 3.1 document of every described route of `app`."""
    paths = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        contract = contract_of(app, rule)
        if contract is None:
            continue
        view = app.view_functions[rule.endpoint]
        for method in methods(rule):
            path, described = operation(rule, view, contract, method)
            paths.setdefault(path, {})[method.lower()] = described
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Sentinel",
            "version": version,
            "description": (
                "The temBoard agent REST API for the PostgreSQL instance Sentinel runs"
                " beside, and the JSON endpoints of its web UI."
            ),
        },
        "paths": paths,
        "components": {"schemas": COMPONENTS, "securitySchemes": SECURITY_SCHEMES},
    }


def undescribed_routes(app):
    """'METHOD /path' of every registered route without a description."""
    return [
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if contract_of(app, rule) is None
        for method in methods(rule)
    ]


# -- checking an answer against its description (the test suite does, for every call) ------


def answer_schema(app, rule, method, status, media):
    """The schema a route's answer of `status` must satisfy, None when it is
    not described further, or False when the status is not described."""
    contract = contract_of(app, rule)
    view = app.view_functions[rule.endpoint]
    _, described = operation(rule, view, contract, method)
    answer = described["responses"].get(str(status))
    if answer is None:
        return False
    content = answer.get("content")
    if not content:
        return None
    chosen = content.get(media) or content.get("*/*")
    if chosen is None:
        return False
    schema = chosen.get("schema")
    # References to named schemas resolve against the schema's own root.
    return {**schema, "components": {"schemas": COMPONENTS}} if schema is not None else None


def answer_problem(app, req, response):
    """What is wrong with `response` to `req` against its route's description,
    or None. Unmatched URLs (a 404) have no description to check against, and
    routes without one are undescribed_routes()' business."""
    rule = req.url_rule
    if rule is None or req.method in ("HEAD", "OPTIONS") or contract_of(app, rule) is None:
        return None
    media = response.mimetype
    schema = answer_schema(app, rule, req.method, response.status_code, media)
    where = f"{req.method} {req.path} -> {response.status_code} {media}"
    if schema is False:
        return f"{where}: not described"
    if schema is None or media != JSON:
        return None
    errors = sorted(Validator(schema).iter_errors(response.get_json()), key=str)
    if errors:
        return f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
    return None
