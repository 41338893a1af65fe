"""A sendout completes once every message has gone as far as its reports can take it, and
``sendout_completed`` fires once per sendout, ever.

A message that asked for no report (``dlr_level`` 0, or sent while CALLBACK_BASE_URL is empty)
hears nothing after ``accepted``; one that asked for SMSC-level reports only (level 1) hears
nothing after ``at_smsc``. Waiting for more would leave the sendout in progress for ever.
"""

import json

import pytest

import d7sms
from d7sms import progress, signals, sql, status
from d7sms.models import Message, MessageStatus, Sendout, SendoutStatus
from tests import sql_twins

pytest_plugins = ["tests.admin_support"]
S = MessageStatus


@pytest.fixture
def completions():
    seen = []

    def receiver(sendout, **kwargs):
        seen.append(sendout.pk)

    signals.sendout_completed.connect(receiver, weak=False, dispatch_uid="test-completion")
    yield seen
    signals.sendout_completed.disconnect(dispatch_uid="test-completion")


@pytest.fixture
def wired(d7_settings, live_server, sandbox):
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True}
    return sandbox


def progress_of(admin_client, sendout):
    return json.loads(admin_client.get(f"/admin/d7sms/sendout/{sendout.pk}/progress/").content)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("level, last", [(0, S.ACCEPTED), (1, S.AT_SMSC)])
def test_a_sendout_without_final_reports_completes(wired, completions, sender_client, level, last):
    sendout = d7sms.send_batch([f"+44791112{i:04d}" for i in range(1, 4)], "Hi", dlr_level=level)
    assert wired.wait_idle(20)
    sendout.refresh_from_db()
    assert set(sendout.messages.values_list("status", flat=True)) == {last}
    assert sendout.status == SendoutStatus.COMPLETED and sendout.completed_at
    assert completions == [sendout.pk]
    assert progress_of(sender_client, sendout)["done"] is True  # the page stops polling


@pytest.mark.django_db(transaction=True)
def test_a_sendout_sent_without_callback_base_url_completes(d7_settings, sandbox, completions, sender_client):
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": "", "SYNC": True}
    sendout = d7sms.send_batch(["+447911120001", "+447911120002"], "Hi", dlr_level=3, mode="single")
    sendout.refresh_from_db()
    assert set(sendout.messages.values_list("status", flat=True)) == {S.ACCEPTED}
    assert sendout.status == SendoutStatus.COMPLETED and completions == [sendout.pk]
    assert progress_of(sender_client, sendout)["done"] is True


@pytest.mark.django_db
def test_level3_sendout_still_waits_for_its_final_reports(sender_client):
    sendout = Sendout.objects.create(name="waits", content="Hi", dlr_level=3, status=SendoutStatus.IN_PROGRESS)
    Message.objects.create(sendout=sendout, to="+447911120003", content="Hi", status=S.AT_SMSC, dlr_level=3)
    assert progress.refresh(sendout.pk) == SendoutStatus.IN_PROGRESS
    assert progress_of(sender_client, sendout)["done"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize("state", [S.ACCEPTED, S.AT_SMSC, S.UNKNOWN, S.DELIVERED])
@pytest.mark.parametrize("callback_url", ["https://example.com", ""])
def test_sendout_running_knows_which_messages_may_still_hear_from_d7(settings, level, state, callback_url):
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": callback_url}
    sendout = Sendout.objects.create(name="r", content="Hi", dlr_level=level, status=SendoutStatus.IN_PROGRESS)
    message = Message.objects.create(sendout=sendout, to="+447911120004", content="Hi", status=state, dlr_level=level)
    got = sql.sendout_running(sendout_id=sendout.pk)
    assert got == sql_twins.sendout_running(sendout_id=sendout.pk)
    assert sql.sendout_running(message_id=message.pk) == sql_twins.sendout_running(message_id=message.pk) == got
    reach = 0 if not callback_url else min(level, 2)
    expect = state == S.UNKNOWN or (state == S.ACCEPTED and reach >= 1) or (state == S.AT_SMSC and reach >= 2)
    assert got == (sendout.pk, expect)


# -- sendout_completed once per sendout -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sendout_completed_fires_once_even_after_a_retry_completes_it_again(wired, completions):
    sendout = d7sms.send_batch(["+447911120011", "+447911120019"], "Hi", dlr_level=3)  # ...9: undelivered
    assert wired.wait_idle(20)
    sendout.refresh_from_db()
    assert sendout.status == SendoutStatus.COMPLETED_WITH_FAILURES and completions == [sendout.pk]
    first_completed_at = sendout.completed_at
    assert d7sms.api.retry_failed(sendout) == 1  # re-opens it...
    assert wired.wait_idle(20)
    sendout.refresh_from_db()
    assert sendout.status == SendoutStatus.COMPLETED_WITH_FAILURES  # ...and it completes again
    assert sendout.completed_at >= first_completed_at
    assert completions == [sendout.pk]  # announced once, ever


# -- message_status_changed only for rows that moved ------------------------------------------


@pytest.fixture
def moves():
    seen = []

    def receiver(message_id, old, new, **kwargs):
        seen.append((message_id, old, new))

    signals.message_status_changed.connect(receiver, weak=False, dispatch_uid="test-moves")
    yield seen
    signals.message_status_changed.disconnect(dispatch_uid="test-moves")


@pytest.mark.django_db
def test_requeue_announces_only_the_messages_it_moved(moves, django_capture_on_commit_callbacks):
    sending_one = Message.objects.create(to="+447911120021", content="Hi", status=S.SENDING)
    accepted = Message.objects.create(to="+447911120022", content="Hi", status=S.ACCEPTED)
    with django_capture_on_commit_callbacks(execute=True):
        assert status.requeue([sending_one.pk, accepted.pk], next_attempt_at=None) == 1
    assert moves == [(sending_one.pk, S.SENDING, S.QUEUED)]


@pytest.mark.django_db
def test_claim_announces_and_returns_only_the_messages_its_update_moved(moves, django_capture_on_commit_callbacks):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the trigger below is SQLite's syntax")
    first = Message.objects.create(to="+447911120031", content="Hi", status=S.QUEUED)
    taken = Message.objects.create(to="+447911120032", content="Hi", status=S.QUEUED)
    # Another claimer's write landing between this claim's read and its UPDATE: the database
    # leaves that row alone, so the UPDATE moves fewer rows than were read.
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TRIGGER d7_test_taken BEFORE UPDATE ON d7sms_message WHEN OLD.id = {taken.pk} "
            "BEGIN SELECT RAISE(IGNORE); END"
        )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            mine = status.claim([first.pk, taken.pk])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER d7_test_taken")
    assert mine == [first.pk]
    assert moves == [(first.pk, S.QUEUED, S.SENDING)]
