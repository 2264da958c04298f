"""What PostgreSQL accepts as a setting's value, told before anything is written.

Each check takes a pg_settings row (vartype, unit, min_val, max_val, enumvals)
and the text a user gives, and answers the value in a comparable form (a
number in the setting's own unit, "on"/"off", an enum value as PostgreSQL
spells it, the text) or raises ValueRefused saying why, in PostgreSQL's own
terms: the units it takes, the range in the setting's unit, its values.
"""

import csv
import math
import re

# Memory units in bytes, time units in milliseconds, as postgresql.conf takes them.
MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}

_NUMBER = re.compile(
    r"\s*(?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?))"
    r"\s*(?P<unit>[a-zA-Z]+)?\s*"
)
_SETTING_UNIT = re.compile(r"(?P<count>[0-9]*)(?P<base>[a-zA-Z]+)")
# Settings ALTER SYSTEM refuses whatever their value.
NOT_IN_FILES = {
    "config_file",
    "data_directory",
    "transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
}
# What PostgreSQL reads as a boolean: these words, or a unique prefix of them.
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


class ValueRefused(ValueError):
    """The value cannot be the setting's; the text says why, without the name."""


def unit_family(unit):
    """(the unit table, the size of one `unit` in it) of a pg_settings unit
    ("8kB", "ms"), or (None, 1) for a setting without unit."""
    if not unit:
        return None, 1
    match = _SETTING_UNIT.fullmatch(unit)
    count = int(match.group("count") or 1)
    base = match.group("base")
    for table in (MEMORY_UNITS, TIME_UNITS):
        if base in table:
            return table, count * table[base]
    return None, 1


def with_unit(number, unit):
    """A number of the setting's unit as postgresql.conf would write it:
    16 of "8kB" is "128kB", 64 of "kB" is "64kB"."""
    if not unit:
        return _plain(number)
    match = _SETTING_UNIT.fullmatch(unit)
    count = int(match.group("count") or 1)
    return f"{_plain(number * count)}{match.group('base')}"


def _plain(number):
    number = float(number)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:g}"


def _parse_number(text):
    """(float, unit or None) of "128MB", "0.5", "0x10", " 30 s", or ValueRefused."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise ValueRefused(f"{text!r} is not a number")
    number = match.group("number")
    digits = number.lstrip("+-")
    sign = -1 if number.startswith("-") else 1
    if digits[:2].lower() == "0x":
        value = sign * int(digits, 16)
    elif re.fullmatch(r"0[0-7]+", digits):
        value = sign * int(digits, 8)  # as strtol reads it for PostgreSQL
    else:
        value = float(number)
    if not math.isfinite(value):
        raise ValueRefused(f"{text!r} is not a number")
    return value, match.group("unit")


def _numeric(row, text):
    value, given_unit = _parse_number(text)
    table, size = unit_family(row["unit"])
    if given_unit is not None:
        if table is None:
            raise ValueRefused(f"{text!r}: this setting takes no unit")
        if given_unit not in table:
            raise ValueRefused(f"{text!r}: the units of this setting are {', '.join(table)}")
        value = value * table[given_unit] / size
    if row["vartype"] == "integer":
        if value != int(value) and given_unit is None:
            raise ValueRefused(f"{text!r} is not a whole number")
        value = float(round(value))
    low, high = float(row["min_val"]), float(row["max_val"])
    if value < low:
        raise ValueRefused(f"{text} is below the minimum {with_unit(low, row['unit'])}")
    if value > high:
        raise ValueRefused(f"{text} is above the maximum {with_unit(high, row['unit'])}")
    return value


def _boolean(text):
    word = text.lower()  # as PostgreSQL reads it: no space trimmed
    if word:
        trues = [w for w in TRUE_WORDS if w.startswith(word)]
        falses = [w for w in FALSE_WORDS if w.startswith(word)]
        # "o" could be on or off: PostgreSQL wants two letters there.
        if trues and not falses and word != "o":
            return "on"
        if falses and not trues and word != "o":
            return "off"
    raise ValueRefused(f"{text!r} is not a boolean (on, off, true, false, yes, no, 1, 0)")


def enum_values(enumvals):
    """The values of an enum setting from pg_settings' text of its array ("{a,"b c"}")."""
    if not enumvals:
        return []
    inner = enumvals[1:-1]
    return next(csv.reader([inner], quotechar='"', escapechar="\\")) if inner else []


def _enum(row, text):
    allowed = enum_values(row["enumvals"])
    for value in allowed:
        if value.lower() == text.lower():
            return value
    raise ValueRefused(f"{text!r} is not one of {', '.join(allowed)}")


def check(row, text):
    """The value `text` as comparable for the setting of pg_settings `row`, or
    ValueRefused. An empty text means the setting's reset, and is always fine."""
    if "\x00" in text:
        raise ValueRefused("a value cannot hold a NUL character")
    if row["context"] == "internal":
        raise ValueRefused("cannot be changed: it is fixed when PostgreSQL is built or initialised")
    if row["name"] in NOT_IN_FILES:
        raise ValueRefused("cannot be set in the configuration files (ALTER SYSTEM refuses it)")
    if text == "":
        return ""
    kind = row["vartype"]
    if kind in ("integer", "real"):
        return _numeric(row, text)
    if kind == "bool":
        return _boolean(text)
    if kind == "enum":
        return _enum(row, text)
    return text


def comparable(row, text):
    """The current value text of a setting (pg_settings.setting) in check()'s form."""
    try:
        return check(row, text)
    except ValueRefused:
        return text


def shown(number, unit):
    """A number of the setting's unit as current_setting() shows it: in the
    largest unit it is a whole number of ("5s" for 5000 of "ms"), a value of
    zero or less without unit."""
    table, size = unit_family(unit)
    if table is None or number <= 0:
        return _plain(number)
    amount = number * size
    smallest = unit_family(_SETTING_UNIT.fullmatch(unit).group("base"))[1]
    for name, factor in sorted(table.items(), key=lambda item: -item[1]):
        if factor >= smallest and amount % factor == 0:
            return f"{_plain(amount / factor)}{name}"
    return with_unit(number, unit)


def server_value(row, text):
    """(setting, setting_raw) of pg_settings for the text a file or the
    defaults give a setting."""
    value = comparable(row, text)
    if isinstance(value, float):
        return _plain(value), shown(value, row["unit"])
    return value, value
