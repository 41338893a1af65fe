"""How D7's calls are written: one transaction per call, a lean INSERT, and raw records.

Every call is stored before it is applied and in the same transaction, so a call is either
stored and applied, or not stored at all (and D7, not hearing ACK, sends it again).
"""

import functools
import hashlib
import logging

from django.db import connection, connections, router, transaction
from django.db.models.signals import post_save, pre_save

from d7sms import signals
from d7sms.models import Batch, BatchCallback, DeliveryReport, Message
from d7sms.webhooks.parsing import last

logger = logging.getLogger("d7sms.webhooks")


def lock_d7_id(d7_id):
    """Serialise "is this id bound yet?" against binding it, so no orphan is left behind.

    SQLite runs one writer at a time, which already gives this; PostgreSQL needs a lock that
    exists before the row that will carry the id does.
    """
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.blake2b(d7_id.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def insert(row):
    """INSERT ``row`` with a hand-written statement: Model.save() costs twice as much.

    Falls back to save() whenever someone listens to the model's save signals, or to
    delivery_report_received (whose receivers get the row with its primary key).
    """
    model = type(row)
    if (
        signals.delivery_report_received.has_listeners()
        or pre_save.has_listeners(model)
        or post_save.has_listeners(model)
    ):
        row.save(force_insert=True)
        return
    alias = router.db_for_write(model)
    conn = connections[alias]
    sql, fields = _insert_sql(alias, model)
    with conn.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(row, add=True), conn) for f in fields])


@functools.lru_cache(maxsize=8)
def _insert_sql(alias, model):
    qn = connections[alias].ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", fields


def commit(work, row):
    """Run ``work()`` in one transaction that has committed when this returns.

    A failing on-commit hook (such as a sendout refresh) raises after the commit; the call is
    stored and applied by then, so it is logged rather than reported as a storage failure.
    """
    committed = []
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))
            work()
    except Exception:
        if not committed:
            raise
        logger.exception("An on-commit hook failed after storing %s", row)


def store_raw_dlr(params, problem, *, message_id=None, method="", remote_addr=None):
    """Store a DLR call that cannot be applied, with ``problem`` saying why; return the row."""
    level = last(params.get("level", "")).strip()
    with transaction.atomic():
        if message_id is not None and not Message.objects.filter(pk=message_id).exists():
            message_id = None
        return DeliveryReport.objects.create(
            message_id=message_id,
            d7_message_id=last(params.get("id", "")).strip()[:64],
            level=int(level) if level in ("1", "2") else None,
            message_status=last(params.get("message_status", "")).strip()[:40],
            params=params,
            method=method,
            remote_addr=remote_addr,
            problem=problem[:200],
        )


def store_raw_callback(kind, batch_key, params, problem, *, remote_addr=None):
    """Store a batch callback or errback call that cannot be applied; return the row."""
    with transaction.atomic():
        return BatchCallback.objects.create(
            kind=kind,
            batch_id=Batch.objects.filter(key=batch_key).values_list("pk", flat=True).first(),
            to=last(params.get("to", "")).strip()[:32],
            status_text=last(params.get("statusText", ""))[:2000],
            params=params,
            remote_addr=remote_addr,
            problem=problem[:200],
        )
