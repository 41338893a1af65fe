"""Nothing is sent twice by any door: repeated and concurrent confirms, resends and retries,
claims on a database without SKIP LOCKED, and gateways that answer 504 after D7 took the call.

What counts is what the sandbox received. Sending runs in the calling process (SYNC) through
the real D7 backend, over HTTP, into the sandbox; concurrent callers are threads, each with its
own database connection, on SQLite and (with D7SMS_TEST_DATABASE=postgres) on PostgreSQL.
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

import d7sms
from d7sms import api, sql, status, tasks
from d7sms.models import DeliveryReport, Message, MessageStatus, SendMode, Sendout
from tests.admin_support import VIEW
from tests.cluster import numbers, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
S = MessageStatus
RACERS = 8


@pytest.fixture
def live(d7_settings):
    """Send in this process, through the D7 backend, into the sandbox; retries come fast."""
    d7_settings.D7SMS = {
        **d7_settings.D7SMS, "SYNC": True, "RETRY_BACKOFF": 0.01, "RETRY_BACKOFF_MAX": 0.05, "CALLBACK_BASE_URL": "",
    }
    return d7_settings


def received(sandbox):
    """How often the sandbox took each destination, once it has run every batch it queued
    (it answers a sendbatch call before it runs the batch, as D7 does)."""
    assert sandbox.wait_idle(30)
    return Counter(m["to"] for m in sandbox.accepted())


def race(callers, work):
    """Run ``work()`` in ``callers`` threads released at once; return (results, errors)."""
    barrier = threading.Barrier(callers)
    results, errors = [], []

    def run():
        try:
            barrier.wait(10)
            results.append(work())
        except Exception as exc:  # noqa: BLE001  (collected for the assertions)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def failed_sendout(sandbox, count=6):
    """A sendout through the sandbox where every number ends in 7 ("no route"): all fail."""
    targets = [f"+4479110{n:04d}7" for n in range(700, 700 + count)]
    sendout = d7sms.send_batch(targets, "Try again", mode=SendMode.SINGLE)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.REJECTED}
    assert sandbox.stats().get("accepted", 0) == 0
    return sendout


# -- resend and retry --------------------------------------------------------------------------


def test_concurrent_resends_of_one_message_make_one_copy(live, sandbox):
    [message] = Message.objects.filter(pk=d7sms.send_sms("+447911000010", "Code 1234").pk)
    assert received(sandbox) == {"+447911000010": 1}
    results, errors = race(RACERS, lambda: api.resend(message))
    assert len(results) == 1, (results, errors)
    assert {e.code for e in errors} == {"already_resent"}
    assert Message.objects.filter(resend_of=message).count() == 1
    assert received(sandbox) == {"+447911000010": 2}  # the original and exactly one copy


def test_a_message_is_resent_once_and_again_only_through_its_copy(live, sandbox):
    message = d7sms.send_sms("+447911000020", "Hello")
    copy = api.resend(message)
    with pytest.raises(Exception, match="already sent again, as message") as info:
        api.resend(message)
    assert info.value.code == "already_resent" and info.value.params == {"copy": copy.pk}
    again = api.resend(Message.objects.get(pk=copy.pk))
    assert again.resend_of_id == copy.pk
    assert received(sandbox) == {"+447911000020": 3}


def test_concurrent_retries_of_one_sendout_resend_each_failure_once(live, sandbox):
    sendout = failed_sendout(sandbox)
    results, errors = race(RACERS, lambda: api.retry_failed(Sendout.objects.get(pk=sendout.pk)))
    assert not errors and sorted(results) == [0] * (RACERS - 1) + [6]
    originals = Message.objects.filter(sendout=sendout, resend_of__isnull=True)
    assert all(Message.objects.filter(resend_of=m).count() == 1 for m in originals)
    assert Message.objects.filter(sendout=sendout).count() == 12
    # Every number was tried twice in all (the original, one retry), never more: the sandbox
    # refuses them (412 no route), so they show in its request count, not as accepted.
    assert sandbox.stats()["send_requests"] == 12  # (a balance read follows the completion)


# -- claims ------------------------------------------------------------------------------------


@pytest.mark.parametrize("returning", [True, False])
@pytest.mark.parametrize("skip_locked", [True, False])
def test_each_message_is_claimed_by_exactly_one_caller(live, monkeypatch, skip_locked, returning):
    # A database without SKIP LOCKED (older MySQL/MariaDB) or without UPDATE ... RETURNING (those,
    # SQLite before 3.35) cannot run here: the same paths are taken by telling d7sms it lacks them.
    if not skip_locked:
        monkeypatch.setattr(type(connection.features), "has_select_for_update_skip_locked", False)
    if not returning:
        monkeypatch.setattr(sql, "updates_return_rows", lambda: False)
    messages = Message.objects.bulk_create(
        [Message(to=n, content="x", status=S.QUEUED) for n in numbers(200, start=100)]
    )
    ids = [m.pk for m in messages]
    results, errors = race(RACERS, lambda: status.claim(ids))
    assert not errors
    claimed = [pk for mine in results for pk in mine]
    assert sorted(claimed) == sorted(ids), "every message claimed once, by one caller"
    assert Message.objects.filter(pk__in=ids, status=S.SENDING).count() == 200


def test_a_claim_returns_only_rows_its_own_update_changed(live):
    [message] = Message.objects.bulk_create([Message(to="+447911000030", content="x", status=S.QUEUED)])
    assert status.claim([message.pk]) == [message.pk]
    # The row is no longer queued: a second claim changes nothing, so owns nothing.
    assert status.claim([message.pk]) == []
    Message.objects.filter(pk=message.pk).update(status=S.QUEUED)  # as if requeued by hand
    assert status.claim([message.pk]) == [message.pk]


# -- ambiguous answers -------------------------------------------------------------------------


def until_nothing_queued(sendout):
    """Enqueue what a stopped task left queued, as housekeeping would, until nothing is left."""
    for _ in range(20):
        if not sendout.messages.filter(status=S.QUEUED).exists():
            return
        tasks.sweep(everything=True)
    raise AssertionError("messages stayed queued")


def test_a_504_after_d7_took_a_single_send_is_unknown_and_never_sent_again(live, sandbox):
    sandbox.set_faults(gateway_timeout_rate=0.34, seed=11)
    sendout = d7sms.send_batch(numbers(30, start=300), "One each", mode=SendMode.SINGLE)
    until_nothing_queued(sendout)  # three doubtful answers in a row stop a task
    got = received(sandbox)
    assert len(got) == 30 and set(got.values()) == {1}
    statuses = Counter(sendout.messages.values_list("status", flat=True))
    assert statuses[S.UNKNOWN] == sandbox.stats()["fault_504"] > 0
    assert statuses[S.UNKNOWN] + statuses[S.ACCEPTED] == 30
    sandbox.set_faults()
    tasks.sweep(everything=True)  # what a housekeeping pass would do after a pause
    assert received(sandbox) == got and sandbox.stats()["requests"] == 30


def test_a_504_on_a_sendbatch_call_leaves_that_chunk_unknown_and_never_resends_it(live, sandbox):
    live.D7SMS = {**live.D7SMS, "BATCH_CHUNK_SIZE": 10}
    sandbox.set_faults(gateway_timeout_rate=1.0)
    sendout = d7sms.send_batch(numbers(30, start=500), "Sale")
    statuses = Counter(sendout.messages.values_list("status", flat=True))
    assert statuses == {S.UNKNOWN: 10, S.QUEUED: 20}  # the task stopped at the first doubtful call
    sandbox.set_faults()
    assert tasks.sweep(everything=True) == 20
    got = received(sandbox)
    assert len(got) == 30 and set(got.values()) == {1}
    assert Counter(sendout.messages.values_list("status", flat=True)) == {S.UNKNOWN: 10, S.ACCEPTED: 20}


def test_only_refusals_are_retried(live, sandbox):
    sandbox.set_faults(error_500_rate=0.5, seed=5)  # the sandbox's 500 is Jasmin's own, before acting
    # Enough retries that no message runs out of them, however the faults fall on the calls.
    live.D7SMS = {**live.D7SMS, "MAX_RETRIES": 30, "RETRY_BACKOFF": 0.01, "RETRY_BACKOFF_MAX": 0.05}
    sendout = d7sms.send_batch(numbers(20, start=900), "Retry me", mode=SendMode.SINGLE)
    got = received(sandbox)
    assert len(got) == 20 and set(got.values()) == {1}
    assert set(sendout.messages.values_list("status", flat=True)) == {S.ACCEPTED}
    assert sandbox.stats()["fault_500"] > 0


# -- reports resolve what was unknown ------------------------------------------------------------


@pytest.mark.parametrize("mode", [SendMode.SINGLE, SendMode.BATCH])
def test_late_reports_move_unknown_messages_to_what_d7_says(live, sandbox, live_server, mode):
    live.D7SMS = {**live.D7SMS, "CALLBACK_BASE_URL": live_server.url}
    sandbox.set_faults(gateway_timeout_rate=1.0)
    sendout = d7sms.send_batch(numbers(3, start=1200), "Hello", mode=mode)
    ids = list(sendout.messages.values_list("pk", flat=True))
    # The answer was a 504, yet D7 took the call: its callbacks and delivery reports follow.
    wait_for(
        lambda: set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {S.DELIVERED},
        20, message="the reports to move every unknown message to delivered",
    )
    assert all(m.d7_message_id for m in Message.objects.filter(pk__in=ids))
    assert set(received(sandbox).values()) == {1}


# -- the review of unknown outcomes ----------------------------------------------------------


@pytest.fixture
def staff_client(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("reviewer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="d7sms", codename__in=[*VIEW, "send_sms"])
    )
    client = Client()
    client.force_login(user)
    return client


def test_unknown_review_resends_the_silent_ones_once(live, sandbox, staff_client):
    long_ago = timezone.now() - timedelta(hours=2)
    quiet = [Message.objects.create(to=n, content="Lost?", status=S.UNKNOWN, claimed_at=long_ago,
                                    error_code="outcome_unknown") for n in numbers(3, start=1500)]
    heard = Message.objects.create(to="+447911001600", content="Heard", status=S.UNKNOWN, claimed_at=long_ago,
                                   error_code="outcome_unknown")
    DeliveryReport.objects.create(message=heard, d7_message_id="d7-heard", level=2, message_status="ESME_RX")
    recent = Message.objects.create(to="+447911001610", content="Wait", status=S.UNKNOWN, claimed_at=timezone.now(),
                                    error_code="outcome_unknown")
    resolved = Message.objects.create(to="+447911001620", content="Fine", status=S.DELIVERED, claimed_at=long_ago,
                                      error_code="outcome_unknown", d7_message_id="d7-fine")
    page = staff_client.get("/admin/d7sms/message/unknown/")
    groups = {key: page.context[key]["rows"] for key in ("silent", "waiting", "reported")}
    assert {m.pk for m in groups["silent"]} == {m.pk for m in quiet}
    assert {m.pk for m in groups["waiting"]} == {recent.pk}
    assert {m.pk for m in groups["reported"]} == {heard.pk, resolved.pk}

    assert staff_client.post("/admin/d7sms/message/unknown/", {}).status_code == 302  # not ticked: nothing
    assert not received(sandbox)
    results, errors = race(4, lambda: staff_client.post("/admin/d7sms/message/unknown/", {"confirm": "1"}).status_code)
    assert not errors and results == [302] * 4
    assert received(sandbox) == {m.to: 1 for m in quiet}
    assert all(Message.objects.filter(resend_of=m).count() == 1 for m in quiet)
    assert not Message.objects.filter(resend_of__in=[heard, recent, resolved]).exists()
    notes = LogEntry.objects.filter(change_message__contains="no sign of life")
    assert sorted(int(n.object_id) for n in notes) == sorted(m.pk for m in quiet)


def test_the_quiet_period_is_a_setting(live, staff_client):
    Message.objects.create(to="+447911001700", content="x", status=S.UNKNOWN,
                           claimed_at=timezone.now() - timedelta(minutes=3))
    assert len(staff_client.get("/admin/d7sms/message/unknown/").context["silent"]["rows"]) == 0
    live.D7SMS = {**live.D7SMS, "UNKNOWN_QUIET_PERIOD": 60}
    assert len(staff_client.get("/admin/d7sms/message/unknown/").context["silent"]["rows"]) == 1


# -- the compose preview's confirm --------------------------------------------------------------


def _preview(client, recipients):
    response = client.post(
        "/admin/d7sms/sendout/compose/",
        {"name": "Twice?", "sender": "Shop", "content": "Sale today", "recipients": recipients, "region": "GB",
         "dlr_level": 0, "mode": "batch", "when": "now", "where": "local", "coding": 8},
    )
    assert response.status_code == 200, response.content[:500]
    return response.context["draft"]


def test_one_preview_confirmed_in_several_tabs_at_once_makes_one_sendout(live, sandbox, staff_client):
    targets = numbers(5, start=2000)
    draft = _preview(staff_client, "\n".join(targets))
    results, errors = race(4, lambda: staff_client.post(
        "/admin/d7sms/sendout/compose/", {"_action": "confirm", "draft": draft}).status_code)
    assert not errors and results == [302] * 4
    assert Sendout.objects.count() == 1
    assert received(sandbox) == {n: 1 for n in targets}
    # The back button, or the confirm POST replayed later, lands on the same sendout.
    again = staff_client.post("/admin/d7sms/sendout/compose/", {"_action": "confirm", "draft": draft}, follow=True)
    assert "already confirmed" in again.content.decode()
    assert again.redirect_chain[-1][0].endswith(f"/{Sendout.objects.get().pk}/change/")
    assert Sendout.objects.count() == 1 and received(sandbox) == {n: 1 for n in targets}


def test_a_new_preview_of_the_same_list_is_a_new_sendout(live, sandbox, staff_client):
    targets = numbers(2, start=2100)
    for _ in range(2):
        draft = _preview(staff_client, "\n".join(targets))
        staff_client.post("/admin/d7sms/sendout/compose/", {"_action": "confirm", "draft": draft})
    assert Sendout.objects.count() == 2 and received(sandbox) == {n: 2 for n in targets}


def test_the_api_takes_an_idempotency_key(live, sandbox):
    key = "9b1c7f0e-3c2d-4d8e-9a51-2c3b4d5e6f70"
    first = d7sms.send_batch(numbers(2, start=2200), "Once", idempotency_key=key)
    second = d7sms.send_batch(numbers(2, start=2200), "Once", idempotency_key=key)
    assert (first.repeated, second.repeated, second.pk) == (False, True, first.pk)
    assert set(received(sandbox).values()) == {1}
    with pytest.raises(Exception, match="idempotency_key must be a UUID"):
        d7sms.send_batch(numbers(1, start=2300), "Bad", idempotency_key="not-a-uuid")
