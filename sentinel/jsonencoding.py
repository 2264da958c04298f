"""Flask's JSON answers encoded by orjson.

Through Flask's JSON provider interface, every jsonify() and every dict a view
returns is encoded by orjson, reading as Flask's own encoder wrote it: a type
orjson does not know natively (a datetime, a Decimal) goes through Flask's
default. What orjson refuses (an integer beyond 64 bits), pretty-printing
(debug mode) and reading JSON stay with Flask's encoder.
"""

import orjson
from flask.json.provider import DefaultJSONProvider

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    sort_keys = False

    def dumps(self, obj, **kwargs):
        # Flask asks for compact separators, orjson's only form; an indent
        # or any other option goes to Flask's own encoder.
        if kwargs.keys() - {"separators"}:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=OPTIONS).decode()
        except orjson.JSONEncodeError:
            return super().dumps(obj, **kwargs)
