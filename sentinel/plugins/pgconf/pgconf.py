"""PostgreSQL's settings: read from pg_settings, changed with ALTER SYSTEM,
every change kept in Sentinel's state, and changes made outside Sentinel found.

A change request is checked whole before anything is written: each name must
be a setting, each value one PostgreSQL takes (values.check(), then, for the
settings a session may set, PostgreSQL itself through set_config() in a
transaction rolled back). ALTER SYSTEM cannot run in a transaction, so if
PostgreSQL still refuses one of the writes, those of the same request already
made are written back as they were: a request changes all its settings or none.

Outside changes are found by comparing what pg_settings says with the values
Sentinel last saw (models.SeenSetting); a digest of those values makes the
usual case, nothing changed, one row read.
"""

import calendar
import contextlib
import hashlib
import logging
import time

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from ... import state
from ...core import notifications
from ...errors import Conflict, Invalid, NotFound
from ...postgres import sql_folder
from . import values
from .models import APPLIED, PENDING_RESTART, SeenDigest, SeenSetting, SettingChange

logger = logging.getLogger(__name__)

SQL = sql_folder(__file__)
# Any constant: one change request at a time on an instance, whichever Sentinel sends it.
CHANGE_LOCK_ID = 0x50474346
# Any constant: one look for outside changes at a time, in Sentinel's state.
SNAPSHOT_LOCK_ID = 0x50474353
# Contexts whose settings take effect at the next restart only.
RESTART_CONTEXTS = ("postmaster", "internal")
# Contexts whose settings a session may set: PostgreSQL checks a value there.
SESSION_CONTEXTS = ("user", "superuser")
HISTORY_LIMIT = 500
OUTSIDE = "outside Sentinel"


# -- reading ---------------------------------------------------------------------


def _settings(conn):
    """Every setting of pg_settings, as settings.sql shapes it, by category then
    name. Those Sentinel's connection sets for itself show the server's value
    instead: its line in the files, else the default."""
    rows = conn.query_file(SQL / "settings.sql")
    for row in rows:
        line = row.pop("server_line")
        if row["source"] != "client":
            continue
        if line:
            text, row["sourcefile"], row["sourceline"] = line[0], line[1], int(line[2])
            row["source"] = "configuration file"
        else:
            text, row["sourcefile"], row["sourceline"] = row["boot_val"] or "", None, None
            row["source"] = "default"
        row["setting"], row["setting_raw"] = values.server_value(row, text)
        row["reset_val"] = row["setting"]
    return rows


def read_settings(pg):
    return pg.run(_settings)


def grouped(rows):
    """[{category, rows}] of rows sorted by category, without their category key."""
    groups = []
    for row in rows:
        category = row.pop("category")
        if not groups or groups[-1]["category"] != category:
            groups.append({"category": category, "rows": []})
        groups[-1]["rows"].append(row)
    return groups


def matching(rows, text):
    """The rows whose name or description holds `text`, whatever its case; the
    text is only text (a quote, % or _ is that character)."""
    needle = text.lower()
    return [row for row in rows if needle in row["name"].lower() or needle in row["desc"].lower()]


def configuration(pg, text=None):
    """What GET /pgconf/configuration answers: a read, that writes nothing
    (the worker's watch() and the history look for outside changes)."""
    rows = read_settings(pg)
    return grouped(matching(rows, text) if text else rows)


def category(pg, name):
    rows = [row for row in read_settings(pg) if row["category"] == name]
    if not rows:
        raise NotFound(f"No category named {name!r}: /pgconf/configuration/categories lists them.")
    return grouped(rows)


def categories(pg):
    return pg.run(
        lambda conn: [
            row["category"]
            for row in conn.query("SELECT DISTINCT category FROM pg_settings ORDER BY category")
        ]
    )


def restart_status(pg):
    rows = [row for row in read_settings(pg) if row["pending_restart"]]
    for row in rows:
        del row["category"]
    return {"restart_pending": bool(rows), "restart_changes": rows}


def file_settings(pg):
    """The configuration files' lines as PostgreSQL reads them now. A line is
    `broken` when PostgreSQL could not use it: a syntax error, an unknown
    name, a value it refused (`reason` says why when values.check() can tell:
    PostgreSQL only says "setting could not be applied", which it also says of
    a valid value waiting for a restart, and such a line is not broken)."""

    def work(conn):
        try:
            lines = conn.query_file(SQL / "file_settings.sql")
        except psycopg2.errors.InsufficientPrivilege:
            return None
        rows = _settings(conn) if any(line["error"] for line in lines) else []
        return lines, {row["name"].lower(): row for row in rows}

    read = pg.run(work)
    if read is None:
        return {"readable": False, "valid": None, "lines": []}
    lines, settings = read
    for line in lines:
        line["reason"], line["broken"] = None, bool(line["error"])
        if not line["error"] or not line["name"]:
            continue
        row = settings.get(line["name"].lower())
        if row is None:
            line["reason"] = f"{line['name']} is not a setting of this server"
            continue
        try:
            values.check(row, line["setting"] or "")
        except values.ValueRefused as refused:
            line["reason"] = str(refused)
        else:
            if row["context"] in RESTART_CONTEXTS and row["pending_restart"]:
                line["broken"] = False
                line["reason"] = "takes effect at the next restart"
    return {
        "readable": True,
        "valid": not any(line["broken"] for line in lines),
        "lines": lines,
    }


# -- changing ----------------------------------------------------------------------


def _auto_conf(conn):
    """{lower name: text} of postgresql.auto.conf, or None when it cannot be read."""
    try:
        rows = conn.query_file(SQL / "auto_conf.sql")
    except psycopg2.errors.InsufficientPrivilege:
        return None
    return {row["name"].lower(): row["setting"] for row in rows}


def _refused(name, why):
    return Invalid(f"{name}: {why}")


def _pg_reason(exc):
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()
    return text.removeprefix("ERROR:").strip().splitlines()[0] if text else type(exc).__name__


def _checked_by_postgres(conn, planned):
    """Have PostgreSQL set each session-settable value in a transaction rolled
    back: its refusal names the setting; its answer is the value as it shows it."""
    shown = {}
    session = [item for item in planned if item["row"]["context"] in SESSION_CONTEXTS]
    if not session:
        return shown
    conn.execute("BEGIN")
    try:
        for item in session:
            if item["text"] == "":
                continue
            try:
                shown[item["name"]] = conn.queryscalar(
                    "SELECT set_config(%s, %s, true)", (item["name"], item["text"])
                )
            except psycopg2.Error as exc:
                if isinstance(exc, psycopg2.OperationalError):
                    raise
                raise _refused(item["name"], _pg_reason(exc)) from None
    finally:
        conn.execute("ROLLBACK")
    return shown


def _plan(conn, items, instance):
    """The changes a request makes, checked whole: [{name, text, row, auto}],
    only those that change something. Invalid names the first refusal. What
    changed since Sentinel last looked goes into the history first."""
    rows = {row["name"].lower(): row for row in _settings(conn)}
    observe(list(rows.values()), instance)
    auto = _auto_conf(conn)
    planned, seen = [], set()
    for item in items:
        row = rows.get(item["name"].lower())
        if row is None:
            raise _refused(item["name"], "no such setting")
        if row["name"] in seen:
            raise _refused(row["name"], "given twice in one request")
        seen.add(row["name"])
        try:
            wanted = values.check(row, item["setting"])
        except values.ValueRefused as refused:
            raise _refused(row["name"], str(refused)) from None
        planned.append({"name": row["name"], "text": item["setting"], "row": row, "want": wanted})
    shown = _checked_by_postgres(conn, planned)
    changes = []
    for item in planned:
        row, written = item["row"], None if auto is None else auto.get(item["name"].lower())
        if item["text"] == "":
            changed = auto is None or written is not None
        elif item["name"] in shown:
            changed = shown[item["name"]] != row["setting_raw"] or row["pending_restart"]
        elif row["pending_restart"] and written is not None:
            changed = item["want"] != values.comparable(row, written)
        else:
            changed = item["want"] != values.comparable(row, row["setting"])
        if changed:
            item["auto"] = written
            # A revert puts back the line of postgresql.auto.conf as it was (none: a reset).
            if auto is None:
                item["revert"] = row["setting_raw"] or ""
            else:
                item["revert"] = written if written is not None else ""
            changes.append(item)
    return changes


def _alter_system(conn, name, text):
    if text == "":
        statement = sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name))
    else:
        statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
            sql.Identifier(name), sql.Literal(text)
        )
    conn.execute(statement)


def _write(conn, changes):
    """ALTER SYSTEM each change; if PostgreSQL refuses one, the earlier ones go
    back as they were and Invalid says which and why."""
    done = []
    for change in changes:
        try:
            _alter_system(conn, change["name"], change["text"])
        except psycopg2.Error as exc:
            if isinstance(exc, psycopg2.OperationalError):
                raise
            for earlier in reversed(done):
                _alter_system(conn, earlier["name"], earlier["revert"])
            raise _refused(change["name"], _pg_reason(exc)) from None
        done.append(change)


def _reload(conn, patience=2.0):
    """pg_reload_conf(), and wait (a little) until the postmaster has read the
    files again and signalled the backends: then whatever reads the settings
    next, on any connection, sees the new values."""
    before = conn.queryscalar("SELECT pg_conf_load_time()")
    conn.queryscalar("SELECT pg_reload_conf()")
    deadline = time.monotonic() + patience
    while conn.queryscalar("SELECT pg_conf_load_time() = %s", (before,)):
        if time.monotonic() > deadline:
            logger.warning("event=reload_not_seen seconds=%s", patience)
            return
        time.sleep(0.005)


def apply(pg, items, username, instance, note=""):
    """Change the settings of `items` ([{name, setting}], "" resets) for
    `username`, all or none, then reload; answers those that changed, as the
    agent does: [{name, setting, previous_setting, restart}]."""
    with pg.connection() as conn:
        if not conn.queryscalar("SELECT pg_try_advisory_lock(%s)", (CHANGE_LOCK_ID,)):
            raise Conflict("Another change of the configuration is being made; try again.")
        try:
            changes = _plan(conn, items, instance)
            _write(conn, changes)
            if changes:
                _reload(conn)
        finally:
            conn.queryscalar("SELECT pg_advisory_unlock(%s)", (CHANGE_LOCK_ID,))
    _remember(changes, username, instance, note)
    return [
        {
            "name": change["name"],
            "setting": change["text"],
            "previous_setting": change["row"]["setting_raw"],
            "restart": change["row"]["context"] in RESTART_CONTEXTS,
        }
        for change in changes
    ]


def _shown(text, empty):
    return repr(text) if text != "" else empty


def _remember(changes, username, instance, note):
    if not changes:
        return
    with state.database.atomic():
        for change in changes:
            row = change["row"]
            SettingChange.create(
                instance=instance,
                username=username,
                name=change["name"],
                previous=row["setting_raw"],
                value=change["text"],
                revert_value=change["revert"],
                state=PENDING_RESTART if row["context"] in RESTART_CONTEXTS else APPLIED,
            )
            SeenSetting.update(awaited=True).where(
                (SeenSetting.instance == instance) & (SeenSetting.name == change["name"])
            ).execute()
            logger.info("event=setting_changed name=%s by=%s", change["name"], username)
            notifications.record(
                username,
                f"Setting {change['name']} changed from {_shown(row['setting_raw'], 'empty')}"
                f" to {_shown(change['text'], 'its default (reset)')}{note}",
            )
        notifications.record(username, "PostgreSQL reload")


# -- history and outside changes ---------------------------------------------------------


# Every read of the settings runs this lookup. Written as SQL, as the session
# lookup is: peewee takes longer to build it than SQLite to run it.
DIGEST_SQL = "SELECT id, digest FROM seen_digest WHERE instance = {param}"


def _digest(rows):
    text = "\n".join(f"{row['name']}={row['setting_raw'] or ''}\t{row['source']}" for row in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def _derived(row, before):
    """Whether a new value came without anyone configuring it: a setting fixed
    by the server (internal), or a default the server computes (wal_buffers
    from shared_buffers) that was and stays a default."""
    return row["context"] == "internal" or (before.source == row["source"] == "default")


@contextlib.contextmanager
def _one_at_a_time():
    """A state transaction that no other process's observe() runs beside:
    two web workers reading just after a change record it once, not twice."""
    with state.database.atomic():
        # SQLite: every transaction takes the write lock as it begins (state.open_database).
        if state.is_postgresql():
            state.database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SNAPSHOT_LOCK_ID,))
        yield


def observe(rows, instance):
    """Record the values that changed since Sentinel last looked and that it
    did not change itself, as changes made outside Sentinel; a change of its
    own waiting for a restart is marked applied once the value shows."""
    digest = _digest(rows)
    sql = DIGEST_SQL.format(param=state.database.param)
    known = state.database.execute_sql(sql, (instance,)).fetchone()
    if known is not None and known[1] == digest:
        return
    current = {row["name"]: (row["setting_raw"] or "", row["source"]) for row in rows}
    by_name = {row["name"]: row for row in rows}
    with _one_at_a_time():
        # Another process may have recorded the same changes while this one waited.
        known = state.database.execute_sql(sql, (instance,)).fetchone()
        if known is not None and known[1] == digest:
            return
        seen = {
            item.name: item for item in SeenSetting.select().where(SeenSetting.instance == instance)
        }
        new = []
        for name, (value, source) in current.items():
            before = seen.get(name)
            if before is None:
                new.append({"instance": instance, "name": name, "value": value, "source": source})
                continue
            if (before.value, before.source) == (value, source):
                continue
            if before.awaited:
                SettingChange.update(state=APPLIED).where(
                    (SettingChange.instance == instance)
                    & (SettingChange.name == name)
                    & (SettingChange.state == PENDING_RESTART)
                ).execute()
            elif before.value != value and not _derived(by_name[name], before):
                SettingChange.create(
                    instance=instance,
                    username=None,
                    name=name,
                    previous=before.value,
                    value=value,
                    revert_value=before.value,
                    state=APPLIED,
                )
                logger.info("event=setting_changed_outside name=%s", name)
            SeenSetting.update(value=value, source=source, awaited=False).where(
                SeenSetting.id == before.id
            ).execute()
        if new:
            SeenSetting.insert_many(new).on_conflict_ignore().execute()
        if known is None:
            SeenDigest.insert(instance=instance, digest=digest).on_conflict_ignore().execute()
        else:
            SeenDigest.update(digest=digest, seen_at=state.utcnow()).where(
                SeenDigest.id == known[0]
            ).execute()


def _epoch(moment):
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6


def history(pg, instance, rows=None, limit=HISTORY_LIMIT):
    """The changes of the instance's settings, newest first, outside ones
    included; `rows`: the settings just read and observed, if they were."""
    if rows is None:
        rows = read_settings(pg)
        observe(rows, instance)
    pending = {row["name"] for row in rows if row["pending_restart"]}
    # A change waiting for a restart that no setting waits for any more took
    # effect (or was undone before the restart: then the last change stands).
    SettingChange.update(state=APPLIED).where(
        (SettingChange.instance == instance)
        & (SettingChange.state == PENDING_RESTART)
        & SettingChange.name.not_in(list(pending) or [""])
    ).execute()
    changes = (
        SettingChange.select()
        .where(SettingChange.instance == instance)
        .order_by(SettingChange.changed_at.desc(), SettingChange.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": change.id,
            "at": _epoch(change.changed_at),
            "username": change.username,
            "outside": change.username is None,
            "name": change.name,
            "previous": change.previous,
            "value": change.value,
            "state": change.state,
        }
        for change in changes
    ]


MAX_ID = 2**63 - 1


def revert(pg, change_id, username, instance):
    """Put back the value a change replaced, checked as any change is."""
    change = None
    if 0 < change_id <= MAX_ID:
        change = SettingChange.get_or_none(
            (SettingChange.id == change_id) & (SettingChange.instance == instance)
        )
    if change is None:
        raise NotFound(f"No change {change_id} in the history of the configuration.")
    return apply(
        pg,
        [{"name": change.name, "setting": change.revert_value}],
        username,
        instance,
        note=f" (revert of change {change.id})",
    )
