"""The ORM twin of each hand-written statement in d7sms/sql.py: same arguments, same effect.

tests/test_sql.py checks each pair gives the same result on SQLite and PostgreSQL;
bench/sql_bench.py measures what the hand-written one saves.
"""

from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce

from d7sms import suppression
from d7sms.models import Message, Sendout, SendoutStatus
from d7sms.sql import OUT_AT_D7


def update_message_if(message_id, allowed, values, match=None, at_least=None):
    values = dict(values)
    if "accepted_at" in values:
        values["accepted_at"] = Coalesce("accepted_at", Value(values["accepted_at"], output_field=DateTimeField()))
    at_least = {f"{name}__gte": value for name, value in (at_least or {}).items()}
    return Message.objects.filter(pk=message_id, status__in=list(allowed), **(match or {}), **at_least).update(**values)


def bind_d7_ids(d7_ids):
    for message_id, d7_id in (d7_ids or {}).items():
        Message.objects.filter(pk=message_id, d7_message_id__isnull=True).update(d7_message_id=d7_id)


def claim_messages(ids, fields, *, now, token, queued, sending):
    if not ids:
        return []
    due = Message.objects.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk__in=ids, status=queued)
    due = due.exclude(suppression.blocked_q())
    if not due.update(status=sending, claim_token=token, claimed_at=now, updated_at=now, attempts=F("attempts") + 1):
        return []
    return list(Message.objects.filter(pk__in=ids, claim_token=token).order_by("pk").values_list(*fields))


def accept_sent(ids, values, d7_ids, *, sending):
    rows = list(Message.objects.filter(pk__in=ids, status=sending).order_by("pk").values_list("pk", "sendout_id", "dlr_level"))
    moved = {pk for pk, _s, _level in rows}
    Message.objects.filter(pk__in=moved).update(**values)
    bind_d7_ids({pk: d7_id for pk, d7_id in (d7_ids or {}).items() if d7_id and pk in moved})
    return rows


def sendout_running(*, sendout_id=None, message_id=None):
    from d7sms.progress import settled

    if message_id is not None:
        sendout_id = Message.objects.filter(pk=message_id).values_list("sendout_id", flat=True).first()
        if sendout_id is None:
            return None, False
    sendout = Sendout.objects.filter(pk=sendout_id, status=SendoutStatus.IN_PROGRESS).first()
    if sendout is None:
        return sendout_id, False
    latest = Message.objects.filter(sendout_id=sendout_id, resent_as__isnull=True)
    out = set(latest.filter(status__in=OUT_AT_D7).values_list("status", flat=True))
    return sendout_id, any(not settled(s, sendout.dlr_level) for s in out)


def insert_row(row):
    row.save(force_insert=True)


def insert_rows(model, varying, rows, **common):
    objects = [model(**dict(zip(varying, row, strict=True)), **common) for row in rows]
    model.objects.bulk_create(objects, batch_size=500)
    return len(objects)
