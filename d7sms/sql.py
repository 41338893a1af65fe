"""Every hand-written SQL statement of d7sms, each on the database the routers choose.

A statement is written by hand only where ``bench/sql_bench.py`` measures its ORM twin (kept
in ``tests/sql_twins.py`` and checked against it on SQLite and PostgreSQL by
``tests/test_sql.py``) as clearly slower on a hot path, or where the ORM has no way to say it
(an advisory lock, the planner's row estimate). Statements are built from the models' own
field and column names, and the text of each is built once per database.
"""

import functools
import hashlib

from django.db import connections
from django.db.models import Model
from django.utils import timezone

from d7sms import conf
from d7sms.models import Message, Sendout, SendoutStatus, Suppression, db_alias

#: Rows per statement when a caller names many ids: under SQLite's limit on parameters.
SLICE = 900
# Rows per INSERT batch: memory stays flat however many rows come.
_INSERT_SLICE = 5000


def slices(items, size=SLICE):
    """Yield lists of at most ``size`` items of ``items`` (any iterable), in order."""
    part = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


# -- the conditional UPDATE of one message (each delivery report) -------------------------------


@functools.lru_cache(maxsize=128)
def _update_message_sql(alias, names, allowed, match_names, at_least_names=()):
    qn = connections[alias].ops.quote_name
    meta = Message._meta
    fields = [meta.get_field(name) for name in names]
    # The first acceptance time is kept.
    sets = [
        f"{qn(f.column)} = COALESCE({qn(f.column)}, %s)" if f.name == "accepted_at" else f"{qn(f.column)} = %s"
        for f in fields
    ]
    match_fields = [meta.get_field(name) for name in (*match_names, *at_least_names)]
    where = [
        f"{qn(meta.pk.column)} = %s",
        f"{qn(meta.get_field('status').column)} IN ({', '.join(['%s'] * len(allowed))})",
        *(f"{qn(f.column)} = %s" for f in match_fields[: len(match_names)]),
        *(f"{qn(f.column)} >= %s" for f in match_fields[len(match_names) :]),
    ]
    sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(where)}"
    return sql, fields, match_fields


def update_message_if(message_id, allowed, values, match=None, at_least=None):
    """UPDATE message ``message_id`` with ``values`` while its status is in ``allowed``, it
    holds the values in ``match`` and at least those in ``at_least``; return the number of rows
    changed (0 or 1).

    An ``accepted_at`` in ``values`` only fills an empty one.
    """
    alias = db_alias()
    conn = connections[alias]
    match, at_least = match or {}, at_least or {}
    allowed = tuple(sorted(str(s) for s in allowed))
    sql, fields, match_fields = _update_message_sql(alias, tuple(values), allowed, tuple(match), tuple(at_least))
    params = [f.get_db_prep_save(values[f.name], conn) for f in fields]
    params += [message_id, *allowed]
    given = {**match, **at_least}
    params += [f.get_db_prep_value(given[f.name], conn) for f in match_fields]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# -- binding D7 message ids after /secure/send ---------------------------------------------------


def bind_d7_ids(d7_ids):
    """Give each message in ``{message_id: d7_id}`` its D7 id, where it has none yet."""
    if not d7_ids:
        return
    conn = connections[db_alias()]
    qn = conn.ops.quote_name
    meta = Message._meta
    column, pk = qn(meta.get_field("d7_message_id").column), qn(meta.pk.column)
    with conn.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {qn(meta.db_table)} SET {column} = %s WHERE {pk} = %s AND {column} IS NULL",
            [(d7_id, message_id) for message_id, d7_id in d7_ids.items()],
        )


# -- a worker's window: the claim and the acceptances, one statement each ---------------------


def updates_return_rows():
    """True when d7sms's database can say which rows an UPDATE changed (``UPDATE ... RETURNING``:
    PostgreSQL, SQLite 3.35 and later)."""
    conn = connections[db_alias()]
    if conn.vendor == "postgresql":
        return True
    if conn.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 35)
    return False


def _ids_where(qn, ids):
    """The ``WHERE`` condition and parameters for the rows with these primary keys: a range when
    they are contiguous, else an IN list (as :func:`d7sms.status.ids_q`)."""
    pk = qn(Message._meta.pk.column)
    ids = sorted(set(ids))
    if ids[-1] - ids[0] + 1 == len(ids):
        return f"{pk} BETWEEN %s AND %s", [ids[0], ids[-1]]
    return f"{pk} IN ({', '.join(['%s'] * len(ids))})", ids


def claim_messages(ids, fields, *, now, token, queued, sending):
    """Claim the due messages among ``ids`` in one conditional UPDATE: those in status
    ``queued`` whose ``next_attempt_at`` is empty or past ``now``, and whose number is not on
    the suppression list (or which ignore it), move to ``sending`` with this claim's ``token``,
    ``claimed_at`` and one more attempt. Return the rows the UPDATE changed,
    as tuples of ``fields`` (by name), in primary key order.

    Only for a database where :func:`updates_return_rows`. Where the database can, rows another
    transaction holds are skipped (``SKIP LOCKED``) instead of waited for.
    """
    if not ids:
        return []
    conn = connections[db_alias()]
    qn = conn.ops.quote_name
    meta = Message._meta
    table = qn(meta.db_table)

    def col(name):
        return qn(meta.get_field(name).column)

    where_ids, params = _ids_where(qn, ids)
    due = f"{col('status')} = %s AND ({col('next_attempt_at')} IS NULL OR {col('next_attempt_at')} <= %s)"
    due_params = [queued, meta.get_field("next_attempt_at").get_db_prep_value(now, conn)]
    if conn.features.has_select_for_update_skip_locked:
        pk = qn(meta.pk.column)
        # The ids outside the subquery too: the planner then starts from the primary key.
        locked = f"SELECT {pk} FROM {table} WHERE {where_ids} AND {due} FOR UPDATE SKIP LOCKED"
        where = f"{where_ids} AND {due} AND {pk} IN ({locked})"
        where_params = [*params, *due_params, *params, *due_params]
    else:
        where, where_params = f"{where_ids} AND {due}", [*params, *due_params]
    # Never a message to a number that opted out (unless sent with ignore_suppression).
    opted_out = Suppression._meta
    where += (
        f" AND ({col('ignore_suppression')} OR NOT EXISTS (SELECT 1 FROM {qn(opted_out.db_table)} WHERE "
        f"{qn(opted_out.db_table)}.{qn(opted_out.get_field('number').column)} = {table}.{col('to')}))"
    )
    stamp = meta.get_field("claimed_at").get_db_prep_value(now, conn)
    set_params = [sending, meta.get_field("claim_token").get_db_prep_value(token, conn), stamp, stamp]
    returning = ", ".join(col(name) for name in fields)
    statement = (
        f"UPDATE {table} SET {col('status')} = %s, {col('claim_token')} = %s, {col('claimed_at')} = %s, "
        f"{col('updated_at')} = %s, {col('attempts')} = {col('attempts')} + 1 WHERE {where} RETURNING {returning}"
    )
    with conn.cursor() as cursor:
        cursor.execute(statement, [*set_params, *where_params])
        rows = cursor.fetchall()
    converters = [_from_db(meta.get_field(name), conn) for name in fields]
    rows = [tuple(convert(value) for convert, value in zip(converters, row, strict=True)) for row in rows]
    return sorted(rows, key=lambda row: row[0])


def _from_db(field, conn):
    """A function turning a value ``field``'s column returned into the Python value the ORM reads."""
    converters = conn.ops.get_db_converters(field.get_col(field.model._meta.db_table)) + field.get_db_converters(conn)
    if not converters:
        return lambda value: value
    expression = field.get_col(field.model._meta.db_table)

    def convert(value):
        for converter in converters:
            value = converter(value, expression, conn)
        return value

    return convert


def accept_sent(ids, values, d7_ids, *, sending):
    """Move the messages ``ids`` still in status ``sending`` to ``values`` (which holds the new
    status) in one UPDATE, giving each its D7 id from ``{message_id: d7_id}`` where it has none
    yet; return ``(id, sendout_id, dlr_level)`` of each row it changed, in id order.

    Only for a database where :func:`updates_return_rows`.
    """
    if not ids:
        return []
    conn = connections[db_alias()]
    qn = conn.ops.quote_name
    meta = Message._meta
    fields = [meta.get_field(name) for name in values]
    sets = [f"{qn(f.column)} = %s" for f in fields]
    params = [f.get_db_prep_save(values[f.name], conn) for f in fields]
    d7 = {pk: d7_id for pk, d7_id in (d7_ids or {}).items() if d7_id}
    if d7:
        column = qn(meta.get_field("d7_message_id").column)
        cases = " ".join(["WHEN %s THEN %s"] * len(d7))
        sets.append(f"{column} = COALESCE({column}, CASE {qn(meta.pk.column)} {cases} END)")
        params += [item for pair in d7.items() for item in pair]
    where_ids, id_params = _ids_where(qn, ids)
    status, sendout, level = (qn(meta.get_field(name).column) for name in ("status", "sendout", "dlr_level"))
    statement = (
        f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} WHERE {where_ids} AND {status} = %s "
        f"RETURNING {qn(meta.pk.column)}, {sendout}, {level}"
    )
    with conn.cursor() as cursor:
        cursor.execute(statement, [*params, *id_params, sending])
        return sorted(tuple(row) for row in cursor.fetchall())


# -- is a sendout still running? (after each final report) -------------------------------------

# Handed to D7 and not final: a sendout holding one of these (that may still hear from D7) is in
# progress. The last two are in that order of how far the reports must reach to move them on.
OUT_AT_D7 = ("unknown", "accepted", "at_smsc")


@functools.lru_cache(maxsize=8)
def _running_sql(alias):
    qn = connections[alias].ops.quote_name
    msg, sendout = qn(Message._meta.db_table), qn(Sendout._meta.db_table)
    fk = qn(Message._meta.get_field("sendout").column)
    status = qn(Message._meta.get_field("status").column)
    sendout_status = qn(Sendout._meta.get_field("status").column)
    level = qn(Sendout._meta.get_field("dlr_level").column)
    token = qn(Message._meta.get_field("resend_token").column)
    # How far the sendout's reports reach (progress.reach): 0 when none can come back (the
    # first parameter: CALLBACK_BASE_URL is set), else 1 for the SMSC only, 2 for the phone.
    reach = f"(CASE WHEN %s = 0 OR s.{level} = 0 THEN 0 WHEN s.{level} = 1 THEN 1 ELSE 2 END)"

    # One EXISTS per status: each is an equality probe of the (sendout, status) index of latest
    # attempts (models.LATEST: a message sent again is its recipient's past), where an IN list
    # can make the planner walk every finished message of the sendout first.
    def probe(ref):
        return f"EXISTS(SELECT 1 FROM {msg} o WHERE o.{fk} = {ref} AND o.{status} = %s AND o.{token} IS NULL)"

    def running(ref):
        # unknown always waits; accepted while any report may come; at_smsc while the phone's may.
        return f"({probe(ref)} OR ({reach} >= 1 AND {probe(ref)}) OR ({reach} >= 2 AND {probe(ref)}))"

    return (
        f"SELECT CASE WHEN {running('s.id')} THEN 1 ELSE 0 END FROM {sendout} s "
        f"WHERE s.id = %s AND s.{sendout_status} = %s",
        f"SELECT m.{fk}, CASE WHEN s.id IS NOT NULL AND {running(f'm.{fk}')} THEN 1 ELSE 0 END "
        f"FROM {msg} m LEFT JOIN {sendout} s ON s.id = m.{fk} AND s.{sendout_status} = %s WHERE m.id = %s",
    )


def sendout_running(*, sendout_id=None, message_id=None):
    """``(sendout id, running)`` for a sendout, or for the sendout of a message: running is true
    while the sendout is in progress and a latest attempt of it is out at D7 and may still hear from
    it (see :func:`d7sms.progress.settled`), so its status cannot have changed. ``(None, False)``
    for a message of no sendout."""
    alias = db_alias()
    by_sendout, by_message = _running_sql(alias)
    in_progress = SendoutStatus.IN_PROGRESS.value
    reports = 1 if conf.get("CALLBACK_BASE_URL") else 0
    unknown, accepted, at_smsc = OUT_AT_D7
    probes = [unknown, reports, accepted, reports, at_smsc]
    with connections[alias].cursor() as cursor:
        if message_id is None:
            cursor.execute(by_sendout, [*probes, sendout_id, in_progress])
            row = cursor.fetchone()
            return sendout_id, bool(row and row[0])
        cursor.execute(by_message, [*probes, in_progress, message_id])
        row = cursor.fetchone()
    return (row[0], bool(row[1])) if row and row[0] is not None else (None, False)


# -- INSERTs -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _insert_sql(alias, model):
    qn = connections[alias].ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", fields


def insert_row(row):
    """INSERT one new model instance ``row`` without reading its primary key back."""
    alias = db_alias()
    conn = connections[alias]
    sql, fields = _insert_sql(alias, type(row))
    with conn.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(row, add=True), conn) for f in fields])


def insert_rows(model, varying, rows, **common):
    """INSERT one row of ``model`` per tuple in ``rows``; return how many were written.

    ``varying`` names the fields whose values each tuple holds, in order. Every other field
    takes its value from ``common`` (by name), else its default; ``auto_now``/``auto_now_add``
    fields get one timestamp. Callable defaults are called once per call, so a field whose
    default must differ per row (a unique UUID, say) has to be in ``varying``. Primary keys
    are not read back. Shared values are prepared once, which is where ``bulk_create`` spends
    its time; PostgreSQL takes the rows through ``COPY``.
    """
    conn = connections[db_alias()]
    fields = [
        f for f in model._meta.concrete_fields if not (f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]
    per_row = [_varying_field(model, name) for name in varying]
    unknown = set(common) - {f.name for f in fields} - {f.attname for f in fields}
    if unknown:
        raise TypeError(f"{model.__name__} has no field(s) {sorted(unknown)}.")
    now = timezone.now()
    shared, head = [], []
    for field in fields:
        if field in per_row:
            continue
        if field.name in common or field.attname in common:
            value = common.get(field.name, common.get(field.attname))
            if isinstance(value, Model):
                value = value.pk
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        shared.append(field)
        head.append(field.get_db_prep_save(value, conn))
    prepare = [lambda v, f=field: f.get_db_prep_save(v, conn) for field in per_row]
    head = tuple(head)
    qn = conn.ops.quote_name
    table = qn(model._meta.db_table)
    columns = ", ".join(qn(f.column) for f in shared + per_row)
    marks = ", ".join(["%s"] * (len(shared) + len(per_row)))
    written = 0
    with conn.cursor() as cursor:
        for part in slices(rows, _INSERT_SLICE):
            data = [head + tuple(p(v) for p, v in zip(prepare, row, strict=True)) for row in part]
            if conn.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            else:
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)
            written += len(data)
    return written


def _varying_field(model, name):
    field = model._meta.get_field(name)
    if not field.concrete or field.primary_key:
        raise TypeError(f"{model.__name__}.{name} cannot vary per row here.")
    return field


# -- what the ORM cannot say -------------------------------------------------------------------


def lock_d7_id(d7_id):
    """Serialise "is this D7 id bound yet?" against binding it, until the transaction ends.

    SQLite runs one writer at a time, which already gives this; PostgreSQL needs a lock that
    exists before the row that will carry the id does: a transaction-level advisory lock.
    """
    conn = connections[db_alias()]
    if conn.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.blake2b(d7_id.encode(), digest_size=8).digest(), "big", signed=True)
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def estimated_rows(model):
    """The PostgreSQL planner's estimate of ``model``'s row count, or None elsewhere or unknown."""
    conn = connections[db_alias()]
    if conn.vendor != "postgresql":
        return None
    with conn.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row and row[0] > 0 else None
