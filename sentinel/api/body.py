"""Reading request bodies: JSON whatever the Content-Type, as the agent does."""

import json

from flask import request

from ..errors import BadJSON


def json_body():
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadJSON()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadJSON() from None
