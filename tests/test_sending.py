"""Sending against the sandbox, in this process: outcomes, retries and pauses checked against
what the sandbox actually received."""

import logging
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from d7sms import api, backends, balance, creation, housekeeping, sending, signals, status, tasks, throttle, webhook_urls
from d7sms.backends import locmem
from d7sms.models import AccountState, Sendout, SendoutStatus, Message, MessageStatus, SendMode

S = MessageStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def fast(d7_settings):
    """The sandbox, quick retries, and no inline sending (tests call :mod:`d7sms.sending`)."""
    d7_settings.D7SMS = {
        **d7_settings.D7SMS,
        "RETRY_BACKOFF": 0.01,
        "RETRY_BACKOFF_MAX": 0.05,
        "MAX_RETRIES": 3,
        "SYNC": False,
        # Reports and callbacks fail at once here instead of waiting on a name lookup.
        "CALLBACK_BASE_URL": "https://127.0.0.1:9",
    }
    return d7_settings


def configure(settings, **values):
    settings.D7SMS = {**settings.D7SMS, **values}


def queued(*numbers, content="Hello", **kwargs):
    return [api.send_sms(n, content, **kwargs) for n in numbers]


def run(messages, seconds=30):
    return sending.send_single([m.pk for m in messages], deadline=time.monotonic() + seconds)


def run_batch(sendout, seconds=30):
    ids = list(sendout.messages.order_by("pk").values_list("pk", flat=True))
    return sending.send_batch_chunks(sendout.pk, ids, deadline=time.monotonic() + seconds)


def fresh(message):
    message.refresh_from_db()
    return message


def requests_made(sandbox):
    return sandbox.stats().get("requests", 0)


# -- /secure/send ---------------------------------------------------------------------------


def test_accepted_message_carries_its_own_dlr_url(fast, sandbox):
    [message] = queued("+447911123456")
    assert run([message]) == []
    sent = sandbox.accepted()
    assert len(sent) == 1
    message = fresh(message)
    assert (message.status, message.d7_message_id, message.attempts) == (S.ACCEPTED, sent[0]["id"], 1)
    assert message.submitted_at and message.accepted_at
    assert sent[0]["dlr_url"] == webhook_urls.dlr_url(message.pk)
    assert (sent[0]["from"], sent[0]["content"], str(sent[0]["dlr_level"])) == ("D7sms", "Hello", "3")
    assert sent[0]["dlr_method"] == "POST"


def test_non_gsm_text_goes_as_ucs2_hex(fast, sandbox):
    [message] = queued("+447911123456", content="Привет ☺")
    run([message])
    [sent] = sandbox.accepted()
    assert str(sent["coding"]) == "8"
    assert bytes.fromhex(sent["hex_content"]).decode("utf-16-be") == "Привет ☺"


def test_redelivered_task_sends_nothing(fast, sandbox):
    messages = queued("+447911000001", "+447911000002")
    run(messages)
    before = requests_made(sandbox)
    assert run(messages) == []
    assert requests_made(sandbox) == before
    assert len(sandbox.accepted()) == 2


def test_mixed_window(fast, sandbox):
    ok, no_route, ok2 = queued("+447911000001", "+447911000017", "+447911000002")
    run([ok, no_route, ok2])
    assert [fresh(m).status for m in (ok, no_route, ok2)] == [S.ACCEPTED, S.REJECTED, S.ACCEPTED]
    assert fresh(no_route).error_code == "NoRoute"  # D7 refused this message: rejected, not failed
    no_route = fresh(no_route)
    assert (no_route.attempts, no_route.error_code) == (1, "NoRoute")
    assert "No route found" in no_route.last_error


def test_invalid_request_fails_at_once(fast, sandbox):
    [message] = queued("+447911000001")
    # Past our own validation: a coding D7 refuses.
    Message.objects.filter(pk=message.pk).update(coding=99)
    run([message])
    message = fresh(message)
    assert (message.status, message.attempts, message.error_code) == (S.FAILED, 1, "InvalidRequest")
    assert "coding" in message.last_error
    assert sandbox.accepted() == []


def test_500s_retried_with_backoff_then_failed(fast, sandbox):
    sandbox.set_faults(error_500_rate=1.0)
    [message] = queued("+447911000001")
    run([message])
    message = fresh(message)
    assert (message.status, message.attempts, message.error_code) == (S.FAILED, 4, "ServerError")
    assert "gave up after 4 attempts" in message.last_error
    stats = sandbox.stats()
    assert stats["fault_500"] == 4 and stats["accepted"] == 0


def test_intermittent_500s_end_with_each_message_sent_once(fast, sandbox):
    configure(fast, MAX_RETRIES=12)
    sandbox.set_faults(error_500_rate=0.4, seed=7)
    messages = queued(*[f"+4479110000{i:02d}" for i in range(30) if i % 10 != 7])
    run(messages)
    assert {fresh(m).status for m in messages} == {S.ACCEPTED}
    sent = [m["to"] for m in sandbox.accepted()]
    assert sorted(sent) == sorted(m.to for m in messages)
    stats = sandbox.stats()
    assert stats["fault_500"] > 0
    assert stats["requests"] == stats["accepted"] + stats["fault_500"]
    assert sum(fresh(m).attempts for m in messages) == stats["requests"]


def test_429_waits_for_retry_after(fast, sandbox):
    configure(fast, MAX_RETRIES=1, RETRY_BACKOFF_MAX=3)
    sandbox.set_faults(error_429_rate=1.0)
    [message] = queued("+447911000001")
    started = time.monotonic()
    run([message])
    assert time.monotonic() - started >= 1.0  # the sandbox says Retry-After: 1
    message = fresh(message)
    assert (message.status, message.attempts, message.error_code) == (S.FAILED, 2, "RateLimited")
    assert sandbox.stats()["fault_429"] == 2


def test_read_timeout_leaves_message_unknown_and_never_retries(fast, sandbox):
    configure(fast, READ_TIMEOUT=0.3)
    sandbox.set_faults(latency_ms=800)
    [message] = queued("+447911000001")
    run([message])
    message = fresh(message)
    assert (message.status, message.attempts, message.error_code) == (S.UNKNOWN, 1, "outcome_unknown")
    assert run([message]) == [] and requests_made(sandbox) == 1
    assert tasks.sweep() == 0


def test_dropped_connection_leaves_message_unknown(fast, sandbox):
    sandbox.set_faults(drop_rate=1.0)
    [message] = queued("+447911000001")
    run([message])
    assert fresh(message).status == S.UNKNOWN
    assert requests_made(sandbox) == 1


def test_unreadable_200_leaves_message_unknown(fast, sandbox):
    sandbox.set_faults(malformed_rate=1.0)
    [message] = queued("+447911000001")
    run([message])
    assert fresh(message).status == S.UNKNOWN
    assert len(sandbox.accepted()) == 1  # D7 took it: exactly why it must not be retried


def test_refused_connection_retried_then_failed(fast):
    with socket_nobody_listens_on() as port:
        configure(fast, BASE_URL=f"http://127.0.0.1:{port}")
        [message] = queued("+447911000001")
        run([message])
    message = fresh(message)
    assert (message.status, message.attempts, message.error_code) == (S.FAILED, 4, "NotSent")


class socket_nobody_listens_on:
    def __enter__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return self.sock.getsockname()[1]

    def __exit__(self, *exc_info):
        self.sock.close()


def test_rejected_credentials_pause_everything_until_a_balance_check_succeeds(
    fast, sandbox, caplog, django_capture_on_commit_callbacks
):
    configure(fast, PASSWORD="wrong-secret")
    events = []
    signals.sending_paused.connect(lambda **kw: events.append(("paused", kw["reason"])), weak=False, dispatch_uid="t1")
    signals.sending_resumed.connect(lambda **kw: events.append(("resumed", None)), weak=False, dispatch_uid="t2")
    try:
        first, second = queued("+447911000001", "+447911000002")
        with caplog.at_level(logging.ERROR, logger="d7sms"), django_capture_on_commit_callbacks(execute=True):
            run([first, second])
        assert [(fresh(m).status, m.attempts) for m in (first, second)] == [(S.QUEUED, 0), (S.QUEUED, 0)]
        state = AccountState.get()
        assert state.paused and "Authentication" in state.pause_reason
        assert events and events[0][0] == "paused"
        assert [r for r in caplog.records if r.levelno == logging.ERROR and "paused" in r.getMessage()]
        assert "wrong-secret" not in caplog.text
        assert requests_made(sandbox) == 1  # the second message was never tried

        assert run([first, second]) == [] and requests_made(sandbox) == 1  # paused: nothing goes

        configure(fast, PASSWORD="bar", SYNC=True)
        with django_capture_on_commit_callbacks(execute=True):
            reading = api.get_balance()
        assert reading.balance == Decimal(100)
        assert not AccountState.get().paused
        assert ("resumed", None) in events
        assert [fresh(m).status for m in (first, second)] == [S.ACCEPTED, S.ACCEPTED]
        assert len(sandbox.accepted()) == 2
    finally:
        signals.sending_paused.disconnect(dispatch_uid="t1")
        signals.sending_resumed.disconnect(dispatch_uid="t2")


@pytest.fixture
def broke_sandbox():
    from d7sms.sandbox import Sandbox, SandboxUser

    sb = Sandbox(users=[SandboxUser("poor", "pw", Decimal(0))]).start()
    yield sb
    sb.stop()


def test_no_credit_pauses_and_an_empty_balance_keeps_it_paused(fast, broke_sandbox):
    configure(fast, BASE_URL=broke_sandbox.url, USERNAME="poor", PASSWORD="pw")
    [message] = queued("+447911000001")
    run([message])
    assert fresh(message).status == S.QUEUED
    state = AccountState.get()
    assert state.paused and "charge" in state.pause_reason.lower()
    reading, resumed = balance.read()
    assert reading.balance == 0 and not resumed
    state = AccountState.get()
    assert state.paused and state.balance == 0 and state.balance_read_at


def test_deadline_hands_the_rest_to_another_task(fast, sandbox):
    sandbox.set_faults(latency_ms=30)
    messages = queued(*[f"+4479110001{i:02d}" for i in range(50) if i % 10 != 7])
    left = sending.send_single([m.pk for m in messages], deadline=time.monotonic() + 0.1)
    sent = len(sandbox.accepted())
    assert 1 <= sent < 20  # the deadline is checked before every call
    assert len(left) == len(messages) - sent
    assert Message.objects.filter(pk__in=left, status=S.QUEUED, attempts=0).count() == len(left)


def test_a_d7_that_stops_answering_stops_the_task(fast, sandbox):
    configure(fast, READ_TIMEOUT=0.2)
    sandbox.set_faults(latency_ms=500)
    messages = queued(*[f"+4479110002{i:02d}" for i in range(10) if i % 10 != 7])
    assert run(messages) == []
    statuses = [fresh(m).status for m in messages]
    assert statuses[: sending.UNKNOWN_STREAK] == [S.UNKNOWN] * sending.UNKNOWN_STREAK
    assert set(statuses[sending.UNKNOWN_STREAK :]) == {S.QUEUED}  # for the sweeper, later
    assert requests_made(sandbox) == sending.UNKNOWN_STREAK


# -- /secure/sendbatch ----------------------------------------------------------------------


def recipients(count, start=0):
    return [f"+447911{n:06d}" for n in range(start, start + count * 2) if n % 10 != 7][:count]


def test_batch_goes_in_chunks_with_a_dlr_url_per_message(fast, sandbox):
    configure(fast, BATCH_CHUNK_SIZE=50)
    sendout = api.send_batch(recipients(120), "Sale today")
    assert run_batch(sendout) == []
    assert sandbox.wait_idle(30)
    sendout.refresh_from_db()
    assert len(sendout.d7_batch_ids) == 3 and sendout.status == SendoutStatus.IN_PROGRESS and sendout.submitted_at
    sent = {m["to"]: m for m in sandbox.accepted()}
    assert len(sent) == 120
    for message in sendout.messages.all():
        assert message.status == S.ACCEPTED and message.d7_batch_id in sendout.d7_batch_ids
        assert message.d7_message_id is None  # bound later by the callback or the first report
        assert sent[message.to]["dlr_url"] == webhook_urls.dlr_url(message.pk)
        assert sent[message.to]["batch_id"] == message.d7_batch_id
        assert sent[message.to]["content"] == "Sale today"


def test_batch_callbacks_point_at_this_sendout(fast, sandbox):
    sendout = api.send_batch(recipients(3), "Hi")
    run_batch(sendout)
    assert sandbox.wait_idle(30)
    urls = {d["url"].split("?")[0] for d in sandbox.deliveries("callback")}
    assert urls == {webhook_urls.callback_url(sendout.key)}


def test_batch_500s_retry_the_whole_chunk_each_recipient_once(fast, sandbox):
    configure(fast, BATCH_CHUNK_SIZE=20, MAX_RETRIES=12)
    sandbox.set_faults(error_500_rate=0.5, seed=3)
    sendout = api.send_batch(recipients(100), "Again")
    run_batch(sendout)
    assert sandbox.wait_idle(30)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.ACCEPTED}
    sent = [m["to"] for m in sandbox.accepted()]
    assert len(sent) == 100 == len(set(sent))
    # Chunks whose retries fall due together may go in one call: at most the five first calls.
    stats = sandbox.stats()
    assert stats["fault_500"] > 0 and 1 <= stats["batches"] <= 5


def test_batch_read_timeout_leaves_the_chunk_unknown(fast, sandbox):
    configure(fast, READ_TIMEOUT=0.3)
    sandbox.set_faults(latency_ms=800)
    sendout = api.send_batch(recipients(5), "Slow")
    run_batch(sendout)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.UNKNOWN}
    assert run_batch(sendout) == [] and requests_made(sandbox) == 1


def test_remote_schedule_is_handed_to_d7_at_once(fast, sandbox):
    at = timezone.now() + timedelta(seconds=2)
    sendout = api.send_batch(recipients(3), "Later", schedule_at=at, remote_schedule=True)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.QUEUED}
    run_batch(sendout)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.ACCEPTED}
    assert sandbox.accepted() == []  # D7 holds it
    assert sandbox.wait_idle(30)
    sent = sandbox.accepted()
    assert len(sent) == 3 and all(m["send_at"] for m in sent)


def test_cancelled_batch_sends_nothing(fast, sandbox):
    sendout = api.send_batch(recipients(10), "No")
    assert api.cancel_sendout(sendout) == 10
    assert run_batch(sendout) == []
    assert requests_made(sandbox) == 0
    assert Sendout.objects.get(pk=sendout.pk).status == SendoutStatus.CANCELLED


# -- the database is the source of truth ----------------------------------------------------


def test_sweeper_enqueues_only_messages_without_a_live_task(settings):
    configure(settings, BACKEND="locmem", SYNC=True, REQUEUE_AFTER=60)
    now = timezone.now()
    lost, live, waiting, due_retry = [
        Message(to=f"+44791100000{i}", content="x", enqueued_at=now) for i in range(1, 5)
    ]
    creation.create_messages([lost, live, waiting, due_retry], scheduled=False)
    Message.objects.filter(pk=lost.pk).update(enqueued_at=now - timedelta(minutes=5))
    Message.objects.filter(pk=waiting.pk).update(next_attempt_at=now + timedelta(minutes=1))
    # Enqueued at first, then requeued for a retry that has come due since: no task covers it.
    Message.objects.filter(pk=due_retry.pk).update(
        enqueued_at=now - timedelta(seconds=10), next_attempt_at=now - timedelta(seconds=1)
    )
    assert set(tasks.orphaned().values_list("pk", flat=True)) == {lost.pk, due_retry.pk}
    assert tasks.sweep() == 2
    assert sorted(m.message_id for m in locmem.outbox()) == sorted([lost.pk, due_retry.pk])
    assert tasks.sweep() == 0


def test_a_message_waiting_for_its_retry_is_not_claimed_early(settings):
    [message] = creation.create_messages([Message(to="+447911000001", content="x")], scheduled=False)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))
    assert status.claim([message.pk]) == []
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert status.claim([message.pk]) == [message.pk]


def test_stuck_sending_becomes_unknown(settings):
    configure(settings, SENDING_TIMEOUT=60)
    old, recent = creation.create_messages(
        [Message(to="+447911000001", content="x"), Message(to="+447911000002", content="x")], scheduled=False
    )
    status.claim([old.pk, recent.pk])
    Message.objects.filter(pk=old.pk).update(claimed_at=timezone.now() - timedelta(minutes=2))
    assert housekeeping.expire_stuck() == 1
    assert (fresh(old).status, fresh(recent).status) == (S.UNKNOWN, S.SENDING)
    assert "no outcome recorded" in fresh(old).last_error


def test_accepted_batch_messages_are_not_stuck(settings):
    configure(settings, BACKEND="locmem", SYNC=False, SENDING_TIMEOUT=0)
    sendout = api.send_batch(recipients(5), "x")
    run_batch(sendout)
    assert housekeeping.expire_stuck() == 0
    assert set(sendout.messages.values_list("status", flat=True)) == {S.ACCEPTED}


@pytest.mark.django_db(transaction=True)
def test_concurrent_tasks_send_each_message_once(settings):
    configure(settings, BACKEND="locmem", SYNC=False)
    sendout = api.send_batch(recipients(200), "Race", mode=SendMode.SINGLE)
    ids = list(sendout.messages.values_list("pk", flat=True))
    errors = []

    def worker():
        try:
            sending.send_single(ids, deadline=time.monotonic() + 30)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    sent = [m.message_id for m in locmem.outbox()]
    assert sorted(sent) == sorted(ids)
    assert Message.objects.filter(pk__in=ids, status=S.ACCEPTED, attempts=1).count() == 200


def test_throttle_holds_the_rate(settings):
    configure(settings, BACKEND="locmem", SYNC=False, THROUGHPUT=20)
    messages = queued(*recipients(60))
    started = time.monotonic()
    run(messages)
    elapsed = time.monotonic() - started
    # 60 at 20/s spans three one-second windows: the throttle made it wait at least one second.
    assert elapsed >= 1.0
    assert len(locmem.outbox()) == 60


def test_throttle_splits_a_large_request_across_windows(settings):
    configure(settings, THROUGHPUT=50)
    started = time.monotonic()
    throttle.acquire(120)
    assert time.monotonic() - started >= 1.0
    assert throttle.chunk_limit(500) == 250


def test_a_task_out_of_time_hands_the_rest_to_a_new_task(settings, monkeypatch):

    configure(settings, BACKEND="locmem", SYNC=False, TASK_SECONDS=0)
    messages = queued("+447911000001", "+447911000002")
    before = {m.pk: m.enqueued_at for m in messages}
    enqueued = []
    monkeypatch.setattr(tasks, "_put", lambda func, *args: enqueued.append((func, args)))
    assert tasks.single_task([m.pk for m in messages]) == 2
    assert enqueued == [(tasks.SINGLE_TASK, ([m.pk for m in messages],))]
    assert locmem.outbox() == []
    assert all(fresh(m).enqueued_at > before[m.pk] for m in messages)  # a live task covers them
