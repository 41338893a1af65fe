"""Each hand-written statement of d7sms/sql.py against its ORM twin (tests/sql_twins.py).

Both run on identical rows; what they return and what they leave in the table must be the same.
The suite runs on SQLite and again on PostgreSQL, so each pair is checked on both.
"""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from d7sms import sql
from d7sms.models import DeliveryReport, Message, MessageStatus, Sendout, SendoutStatus, Suppression
from d7sms.status import ALLOWED_FROM
from tests import sql_twins

pytestmark = pytest.mark.django_db
S = MessageStatus
SNAPSHOT = ("to", "status", "d7_message_id", "accepted_at", "final_at", "error_code", "last_error", "sendout_id")


def twin_rows(statuses, **fields):
    """Two identical sets of messages in ``statuses``: one for the statement, one for its twin."""
    sendouts = [Sendout.objects.create(name=name, status=SendoutStatus.IN_PROGRESS) for name in ("raw", "orm")]
    return [
        [Message.objects.create(sendout=s, to=f"+4479110{i:05d}", status=st, **fields) for i, st in enumerate(statuses)]
        for s in sendouts
    ]


def snapshot(messages):
    return [tuple(Message.objects.values_list(*SNAPSHOT).get(pk=m.pk))[:-1] for m in messages]


@pytest.mark.parametrize("new", [S.AT_SMSC, S.DELIVERED, S.FAILED, S.ACCEPTED])
@pytest.mark.parametrize("matching", [True, False, None])
def test_update_message_if_equals_a_filtered_update(new, matching):
    earlier = timezone.now() - timedelta(hours=1)
    raw, orm = twin_rows(list(S), d7_message_id=None)
    now = timezone.now()
    values = {"status": new, "updated_at": now, "final_at": now, "error_code": "E", "accepted_at": now}
    for a, b in zip(raw, orm, strict=True):
        for m in (a, b):
            Message.objects.filter(pk=m.pk).update(d7_message_id=f"id-{m.pk}", accepted_at=earlier if m.pk % 2 else None)
        match_a = None if matching is None else {"d7_message_id": f"id-{a.pk}" if matching else "other"}
        match_b = None if matching is None else {"d7_message_id": f"id-{b.pk}" if matching else "other"}
        assert sql.update_message_if(a.pk, ALLOWED_FROM[new], values, match_a) == sql_twins.update_message_if(
            b.pk, ALLOWED_FROM[new], values, match_b
        )
    # Ids differ between the sets by construction; compare everything else.
    strip = [(row[0], row[1], row[3], row[4], row[5]) for row in snapshot(raw)]
    assert strip == [(row[0], row[1], row[3], row[4], row[5]) for row in snapshot(orm)]


def test_bind_d7_ids_equals_one_update_per_row():
    raw, orm = twin_rows([S.SENDING] * 4)
    for rows in (raw, orm):
        Message.objects.filter(pk=rows[0].pk).update(d7_message_id=f"kept-{rows[0].pk}")
    sql.bind_d7_ids({m.pk: f"new-{i}-{m.sendout_id}" for i, m in enumerate(raw[:3])})
    sql_twins.bind_d7_ids({m.pk: f"new-{i}-{m.sendout_id}" for i, m in enumerate(orm[:3])})
    ids = [[Message.objects.get(pk=m.pk).d7_message_id for m in rows] for rows in (raw, orm)]
    assert [i and i.split("-")[:2] for i in ids[0][1:]] == [i and i.split("-")[:2] for i in ids[1][1:]]
    assert ids[0][0].startswith("kept-") and ids[1][0].startswith("kept-") and ids[0][3] is None


CLAIM_FIELDS = ("id", "sendout_id", "to", "content", "dlr_level", "attempts")


@pytest.mark.parametrize("skip_locked", [True, False])
@pytest.mark.parametrize("contiguous", [True, False])
def test_claim_messages_equals_an_update_read_back_by_token(monkeypatch, skip_locked, contiguous):
    if not sql.updates_return_rows():
        pytest.skip("this SQLite cannot return rows from an UPDATE: status.claim reads back by token")
    if not skip_locked:
        monkeypatch.setattr(type(connection.features), "has_select_for_update_skip_locked", False)
    now = timezone.now()
    statuses = [S.QUEUED, S.QUEUED, S.QUEUED, S.SENDING, S.ACCEPTED, S.QUEUED, S.PENDING, S.QUEUED, S.QUEUED]
    raw, orm = twin_rows(statuses, content="Hi", attempts=1)
    Suppression.objects.bulk_create([Suppression(number=raw[7].to), Suppression(number=raw[8].to)])  # opted out
    for rows in (raw, orm):
        Message.objects.filter(pk=rows[1].pk).update(next_attempt_at=now + timedelta(minutes=1))  # not due yet
        Message.objects.filter(pk=rows[2].pk).update(next_attempt_at=now - timedelta(minutes=1))  # due
        Message.objects.filter(pk=rows[8].pk).update(ignore_suppression=True)  # transactional: still sent
    pick = slice(None) if contiguous else slice(None, None, 2)
    got = [
        claim(
            [m.pk for m in rows[pick]], CLAIM_FIELDS, now=now, token=token, queued=S.QUEUED, sending=S.SENDING
        )
        for claim, rows, token in ((sql.claim_messages, raw, uuid.uuid4()), (sql_twins.claim_messages, orm, uuid.uuid4()))
    ]
    position = [{m.pk: i for i, m in enumerate(rows)} for rows in (raw, orm)]
    assert [(position[0][r[0]], *r[2:]) for r in got[0]] == [(position[1][r[0]], *r[2:]) for r in got[1]]
    assert [r[0] for r in got[0]] == sorted(r[0] for r in got[0]) and got[0]
    claimed = {r[0] for r in got[0]}
    assert raw[7].pk not in claimed and raw[8].pk in claimed  # opted out; opted out but transactional
    assert all(r[1] == raw[0].sendout_id for r in got[0]) and all(r[-1] == 2 for r in got[0])
    columns = ("status", "attempts", "claimed_at", "next_attempt_at")
    assert [Message.objects.values_list(*columns).get(pk=m.pk) for m in raw] == [
        Message.objects.values_list(*columns).get(pk=m.pk) for m in orm
    ]
    for claimed in got:
        changed = Message.objects.filter(pk__in=[r[0] for r in claimed])
        assert set(changed.values_list("updated_at", flat=True)) == {now}
        tokens = set(changed.values_list("claim_token", flat=True))
        assert len(tokens) == 1 and None not in tokens
    # A second claim of the same ids changes nothing, so returns nothing.
    assert sql.claim_messages([m.pk for m in raw[pick]], ("id",), now=now, token=uuid.uuid4(), queued=S.QUEUED,
                              sending=S.SENDING) == []


def test_accept_sent_equals_a_locked_read_an_update_and_a_bind():
    if not sql.updates_return_rows():
        pytest.skip("this SQLite cannot return rows from an UPDATE: status.record_accepted reads first")
    now = timezone.now()
    statuses = [S.SENDING, S.SENDING, S.SENDING, S.AT_SMSC, S.DELIVERED, S.QUEUED]
    raw, orm = twin_rows(statuses, dlr_level=1)
    for rows in (raw, orm):
        Message.objects.filter(pk=rows[1].pk).update(d7_message_id=f"kept-{rows[1].pk}")
    values = {"status": S.ACCEPTED, "updated_at": now, "accepted_at": now, "submitted_at": now}
    got = [
        accept([m.pk for m in rows], values, {m.pk: f"d7-{m.pk}" if i != 2 else None for i, m in enumerate(rows)},
               sending=S.SENDING)
        for accept, rows in ((sql.accept_sent, raw), (sql_twins.accept_sent, orm))
    ]
    position = [{m.pk: i for i, m in enumerate(rows)} for rows in (raw, orm)]
    assert [(position[0][pk], level) for pk, _s, level in got[0]] == [(0, 1), (1, 1), (2, 1)]
    assert [(position[1][pk], level) for pk, _s, level in got[1]] == [(0, 1), (1, 1), (2, 1)]
    assert {s for _pk, s, _level in got[0]} == {raw[0].sendout_id}
    columns = ("status", "accepted_at", "submitted_at")
    assert [Message.objects.values_list(*columns).get(pk=m.pk) for m in raw] == [
        Message.objects.values_list(*columns).get(pk=m.pk) for m in orm
    ]
    for moved in got:
        assert set(Message.objects.filter(pk__in=[r[0] for r in moved]).values_list("updated_at", flat=True)) == {now}
    d7 = [[Message.objects.get(pk=m.pk).d7_message_id for m in rows] for rows in (raw, orm)]
    for ids, rows in zip(d7, (raw, orm), strict=True):
        assert ids == [f"d7-{rows[0].pk}", f"kept-{rows[1].pk}", None, None, None, None]


@pytest.mark.parametrize("sendout_status", list(SendoutStatus))
@pytest.mark.parametrize("statuses", [[S.DELIVERED], [S.DELIVERED, S.ACCEPTED], [S.UNKNOWN], [S.QUEUED, S.AT_SMSC], []])
def test_sendout_running_equals_two_exists_queries(sendout_status, statuses):
    sendout = Sendout.objects.create(status=sendout_status)
    messages = [Message.objects.create(sendout=sendout, to=f"+4479110{i:05d}", status=s) for i, s in enumerate(statuses)]
    lone = Message.objects.create(to="+447911099999", status=S.ACCEPTED)
    assert sql.sendout_running(sendout_id=sendout.pk) == sql_twins.sendout_running(sendout_id=sendout.pk)
    for message in [*messages, lone]:
        assert sql.sendout_running(message_id=message.pk) == sql_twins.sendout_running(message_id=message.pk)
    assert sql.sendout_running(message_id=10**9) == sql_twins.sendout_running(message_id=10**9) == (None, False)


def test_insert_row_equals_save():
    message = Message.objects.create(to="+447911000001", status=S.ACCEPTED)
    fields = {
        "message": message, "d7_message_id": "d7-x", "level": 2, "message_status": "DELIVRD", "err": "000",
        "params": {"id": "d7-x", "text": ["a", "b"]}, "method": "POST", "remote_addr": "2001:db8::1",
        "done_date": timezone.now(), "applied_at": timezone.now(), "problem": "",
    }
    sql.insert_row(DeliveryReport(**fields))
    sql_twins.insert_row(DeliveryReport(**fields))
    columns = [f.attname for f in DeliveryReport._meta.concrete_fields if f.attname not in ("id", "received_at")]
    first, second = DeliveryReport.objects.order_by("pk").values_list(*columns)
    assert first == second


def test_insert_rows_equals_bulk_create():
    now = timezone.now()
    common = {"status": S.QUEUED, "content": "Hi ☃", "hex_content": "", "coding": None, "parts": 1, "dlr_level": 3,
              "enqueued_at": now, "sender": "Brand"}
    raw, orm = (Sendout.objects.create(name=n) for n in ("raw", "orm"))
    numbers = [f"+4479110{i:05d}" for i in range(1200)]
    assert sql.insert_rows(Message, ("to",), ((n,) for n in numbers), sendout=raw, **common) == 1200
    assert sql_twins.insert_rows(Message, ("to",), ((n,) for n in numbers), sendout=orm, **common) == 1200
    columns = [f.attname for f in Message._meta.concrete_fields if f.attname not in ("id", "sendout_id", "created_at", "updated_at")]
    assert list(raw.messages.order_by("to").values_list(*columns)) == list(orm.messages.order_by("to").values_list(*columns))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="an advisory lock exists on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_lock_d7_id_holds_a_second_transaction_until_the_first_ends():
    held, order = threading.Event(), []

    def other():
        held.wait(10)
        with transaction.atomic():
            sql.lock_d7_id("d7-lock")
            order.append("other")
        connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    with transaction.atomic():
        sql.lock_d7_id("d7-lock")
        held.set()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "other"]


def test_estimated_rows_is_the_planners_guess_on_postgresql_only():
    Message.objects.bulk_create([Message(to=f"+4479110{i:05d}") for i in range(50)])
    if connection.vendor != "postgresql":
        assert sql.estimated_rows(Message) is None
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")
    assert sql.estimated_rows(Message) == 50


def test_slices_cover_every_item_once_in_order():
    items = (uuid.uuid4() for _ in range(2001))
    parts = list(sql.slices(items, 900))
    assert [len(p) for p in parts] == [900, 900, 201]


@pytest.mark.parametrize("copy_status", [S.DELIVERED, S.QUEUED, S.ACCEPTED])
def test_sendout_running_counts_only_latest_attempts_like_its_twin(copy_status):
    """A message sent again (its resend_token stamped, as api.resend does) is its recipient's past:
    an ``unknown`` original whose copy settled does not keep the sendout running."""
    sendout = Sendout.objects.create(status=SendoutStatus.IN_PROGRESS)
    original = Message.objects.create(sendout=sendout, to="+447911000001", status=S.UNKNOWN, resend_token=uuid.uuid4())
    copy = Message.objects.create(sendout=sendout, to="+447911000001", status=copy_status, resend_of=original)
    got = sql.sendout_running(sendout_id=sendout.pk)
    assert got == sql_twins.sendout_running(sendout_id=sendout.pk) == (sendout.pk, copy_status == S.ACCEPTED)
    for message in (original, copy):
        assert sql.sendout_running(message_id=message.pk) == sql_twins.sendout_running(message_id=message.pk) == got
