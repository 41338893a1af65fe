"""End to end: real django-q2 cluster processes send into the sandbox.

SQLite runs django-q2's ORM broker; ``D7SMS_TEST_DATABASE=postgres`` runs PostgreSQL with the
Redis broker, and adds two clusters racing over one queue. What counts is what the sandbox
received: every message exactly once, nothing for what was cancelled.
"""

import os
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import d7sms
from d7sms import housekeeping, tasks
from d7sms.models import Sendout, SendoutStatus, Message, MessageStatus, SendMode
from tests.cluster import Cluster, numbers, redis_up, wait_for

S = MessageStatus
POSTGRES = os.environ.get("D7SMS_TEST_DATABASE") == "postgres"
# An https URL nothing listens on: D7 (the sandbox) fails at once to deliver reports there.
CALLBACK = "https://127.0.0.1:9"

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def e2e(d7_settings, sandbox):
    """Settings for sending into the sandbox from cluster processes; returns the cluster kwargs."""
    if POSTGRES and not redis_up():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (needed as the django-q2 broker).")
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": CALLBACK}
    tasks._broker().purge_queue()  # leftovers of an earlier run on a shared Redis
    return {"base_url": sandbox.url, "settings": {"CALLBACK_BASE_URL": CALLBACK}}


def settled(ids):
    """True when none of ``ids`` is still waiting here or on its way."""
    waiting = (S.PENDING, S.QUEUED, S.SENDING)
    return not Message.objects.filter(pk__in=list(ids), status__in=waiting).exists()


def received(sandbox):
    return Counter(m["to"] for m in sandbox.accepted())


def test_single_messages(e2e, sandbox):
    messages = [d7sms.send_sms(n, f"Hello {i}", dlr_level=3) for i, n in enumerate(numbers(3, start=1))]
    no_route = d7sms.send_sms("+447911000017", "Nowhere")
    with Cluster(**e2e):
        wait_for(lambda: settled([m.pk for m in messages + [no_route]]), 30, message="the messages")
    got = received(sandbox)
    for message in messages:
        message.refresh_from_db()
        assert message.status == S.ACCEPTED and message.d7_message_id
        assert got[message.to] == 1
    sent = {m["to"]: m for m in sandbox.accepted()}
    assert sent[messages[0].to]["dlr_url"].startswith(CALLBACK + "/d7sms/dlr/")
    no_route.refresh_from_db()
    assert (no_route.status, no_route.attempts) == (S.REJECTED, 1)
    assert "No route" in no_route.last_error


def test_thousand_recipients_in_both_modes(e2e, sandbox):
    by_batch = d7sms.send_batch(numbers(1000, start=1000), "Sendout mode", mode=SendMode.BATCH)
    by_send = d7sms.send_batch(numbers(1000, start=5000), "Single mode", mode=SendMode.SINGLE)
    started = time.monotonic()
    with Cluster(**e2e):
        waiting = Message.objects.filter(status__in=(S.QUEUED, S.SENDING))
        wait_for(lambda: not waiting.exists(), 90, message="2,000 sends")
    elapsed = time.monotonic() - started
    sandbox.wait_idle(30)
    got = received(sandbox)
    assert len(got) == 2000 and set(got.values()) == {1}, "every recipient exactly once"
    assert Message.objects.filter(status=S.ACCEPTED).count() == 2000
    by_batch.refresh_from_db()
    assert len(by_batch.d7_batch_ids) == 2  # BATCH_CHUNK_SIZE 500
    assert set(by_batch.messages.values_list("d7_batch_id", flat=True)) == set(by_batch.d7_batch_ids)
    assert not by_send.messages.filter(d7_message_id__isnull=True).exists()
    print(f"2,000 messages in {elapsed:.1f} s (cluster start included)")


def test_local_schedules_fire_once_and_cancelled_never_leaves(e2e, sandbox):
    now = timezone.now()
    missed = d7sms.send_batch(numbers(20, start=100), "Missed while down", schedule_at=now + timedelta(seconds=1))
    time.sleep(1.5)  # its time passes before any cluster runs
    with Cluster(**e2e):
        due = d7sms.send_batch(numbers(20, start=200), "On time", schedule_at=timezone.now() + timedelta(seconds=3))
        cancelled = d7sms.send_batch(numbers(20, start=300), "Never", schedule_at=timezone.now() + timedelta(seconds=3))
        assert d7sms.api.cancel_sendout(cancelled) == 20
        # django-q2's scheduler looks for due schedules every 30 s.
        wait_for(lambda: settled(due.messages.values_list("pk", flat=True)), 50, message="the scheduled sendout")
        wait_for(lambda: settled(missed.messages.values_list("pk", flat=True)), 20, message="the missed sendout")
        # Housekeeping firing what is due again must not send anything twice.
        housekeeping.run()
        time.sleep(1)
    assert sandbox.wait_idle(30)
    got = received(sandbox)
    assert all(got[m.to] == 1 for m in missed.messages.all())
    assert all(got[m.to] == 1 for m in due.messages.all())
    assert not any(m.to in got for m in cancelled.messages.all())
    cancelled.refresh_from_db()
    assert cancelled.status == SendoutStatus.CANCELLED
    assert set(cancelled.messages.values_list("status", flat=True)) == {S.CANCELLED}


def test_killed_worker_loses_nothing_and_sends_nothing_twice(e2e, sandbox, d7_settings):
    sandbox.set_faults(latency_ms=100)
    sendout = d7sms.send_batch(numbers(300, start=400), "Slow", mode=SendMode.SINGLE)  # 6 tasks of 50
    ids = list(sendout.messages.values_list("pk", flat=True))
    with Cluster(**e2e) as cluster:
        wait_for(lambda: len(sandbox.accepted()) >= 5, 30, message="first sends")
        cluster.kill()  # mid-call: the claimed chunks are in doubt
    in_doubt = set(Message.objects.filter(pk__in=ids, status=S.SENDING).values_list("pk", flat=True))
    assert in_doubt, "the kill should have caught a window mid-call"
    # Each of the two workers had at most one window claimed and not yet recorded.
    assert len(in_doubt) <= 2 * d7_settings.D7SMS.get("SEND_WINDOW", 4)
    sandbox.set_faults()
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SENDING_TIMEOUT": 0, "REQUEUE_AFTER": 0}
    assert housekeeping.expire_stuck() == len(in_doubt)
    with Cluster(**e2e):
        assert tasks.sweep() > 0  # the lost task's unclaimed messages
        wait_for(lambda: settled(ids), 30, message="the rest")
    got = received(sandbox)
    assert all(n <= 1 for n in got.values()), "nothing sent twice"
    for message in Message.objects.filter(pk__in=ids):
        if message.pk in in_doubt:
            assert message.status == S.UNKNOWN  # a person decides; never resent on its own
        else:
            assert message.status == S.ACCEPTED and got[message.to] == 1


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="two clusters racing need PostgreSQL row locks (D7SMS_TEST_DATABASE=postgres)")
def test_two_clusters_send_each_message_exactly_once(e2e, sandbox):
    assert connection.vendor == "postgresql"
    sendout = d7sms.send_batch(numbers(5000, start=10_000), "Race", mode=SendMode.SINGLE)
    ids = list(sendout.messages.order_by("pk").values_list("pk", flat=True))
    tasks.enqueue_single(ids)  # every chunk twice: both clusters go for the same rows
    with Cluster(**e2e), Cluster(**e2e):
        wait_for(lambda: settled(ids), 120, interval=0.5, message="5,000 sends")
    got = received(sandbox)
    assert len(got) == 5000 and set(got.values()) == {1}
    assert Message.objects.filter(pk__in=ids, status=S.ACCEPTED).count() == 5000
    assert Sendout.objects.get(pk=sendout.pk).status == SendoutStatus.IN_PROGRESS
