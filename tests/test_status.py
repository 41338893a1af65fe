"""The message state machine (d7sms.status): forward-only moves, claims, and sendout status."""

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from d7sms import api, creation, progress, signals, status
from d7sms.models import FINAL, Message, MessageStatus, Sendout, SendoutStatus

S = MessageStatus
pytestmark = pytest.mark.django_db


def make(count=1, *, scheduled=False, sendout=None):
    messages = [Message(to=f"+4479110000{i:02d}", content="x", sendout=sendout) for i in range(count)]
    return creation.create_messages(messages, scheduled=scheduled)


def current(message):
    return Message.objects.values_list("status", flat=True).get(pk=message.pk)


def test_new_messages_start_pending_or_queued():
    [held] = make(scheduled=True)
    [due] = make(scheduled=False)
    assert (current(held), current(due)) == (S.PENDING, S.QUEUED)


def test_final_statuses_never_change():
    for final in FINAL:
        for new in S:
            assert not status.can_change(final, new), (final, new)


def test_level_one_report_after_level_two_changes_nothing():
    [message] = make()
    assert status.change(message, S.DELIVERED)
    assert not status.change(message, S.AT_SMSC)
    assert current(message) == S.DELIVERED


def test_change_rereads_a_stale_row():
    [message] = make()
    stale = Message.objects.get(pk=message.pk)
    assert status.change(message, S.SENDING)
    assert status.change(stale, S.ACCEPTED)  # read as queued; the row says sending; both allow it
    assert current(message) == S.ACCEPTED and stale.status == S.ACCEPTED


def test_change_many_moves_only_allowed_rows_and_sets_values_per_row():
    a, b, c = make(3)
    status.change(c, S.CANCELLED)
    moved = status.change_many(
        [a.pk, b.pk, c.pk], S.FAILED, per_row={"last_error": {a.pk: "one", b.pk: "two"}}, error_code="E"
    )
    assert sorted(moved) == sorted([a.pk, b.pk])
    rows = dict(Message.objects.values_list("pk", "last_error"))
    assert (rows[a.pk], rows[b.pk], rows[c.pk]) == ("one", "two", "")
    assert current(c) == S.CANCELLED


def test_claim_is_exclusive_and_counts_the_attempt():
    messages = make(3)
    ids = [m.pk for m in messages]
    assert sorted(status.claim(ids)) == sorted(ids)
    assert status.claim(ids) == []
    row = Message.objects.get(pk=ids[0])
    assert (row.status, row.attempts) == (S.SENDING, 1) and row.claimed_at


def test_claim_takes_only_queued_messages():
    [held] = make(scheduled=True)
    assert status.claim([held.pk]) == []


def test_requeue_only_takes_back_what_is_sending():
    a, b = make(2)
    status.claim([a.pk])
    assert status.requeue([a.pk, b.pk], next_attempt_at=None, error="refused") == 1
    assert Message.objects.get(pk=a.pk).last_error == "refused"


def test_record_accepted_keeps_a_report_that_overtook_the_answer():
    ahead, normal = make(2)
    status.claim([ahead.pk, normal.pk])
    status.change(Message.objects.get(pk=ahead.pk), S.DELIVERED)  # the DLR came first
    moved = status.record_accepted([ahead.pk, normal.pk], d7_ids={ahead.pk: "id-a", normal.pk: "id-n"})
    assert moved == [normal.pk]
    rows = {m.pk: m for m in Message.objects.all()}
    assert (rows[ahead.pk].status, rows[ahead.pk].d7_message_id) == (S.DELIVERED, "id-a")
    assert (rows[normal.pk].status, rows[normal.pk].d7_message_id) == (S.ACCEPTED, "id-n")


def test_status_change_is_announced_after_commit(django_capture_on_commit_callbacks):
    [message] = make()
    seen = []
    def receiver(old, new, **kwargs):
        seen.append((old, new))

    signals.message_status_changed.connect(receiver, weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            status.claim([message.pk])
            assert seen == []
        assert seen == [(S.QUEUED, S.SENDING)]
    finally:
        signals.message_status_changed.disconnect(dispatch_uid="t")


def new_sendout():
    return Sendout.objects.create(content="x")


def test_sendout_status_follows_its_messages(django_capture_on_commit_callbacks):
    sendout = new_sendout()
    a, b = make(2, sendout=sendout)
    assert progress.refresh(sendout.pk) == SendoutStatus.SUBMITTING
    status.claim([a.pk, b.pk])
    status.record_accepted([a.pk])
    assert progress.refresh(sendout.pk) == SendoutStatus.IN_PROGRESS
    completed = []
    signals.sendout_completed.connect(lambda **kw: completed.append(kw["sendout"].pk), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            status.change(Message.objects.get(pk=a.pk), S.DELIVERED)
            status.change(Message.objects.get(pk=b.pk), S.UNKNOWN)
            assert progress.refresh(sendout.pk) == SendoutStatus.IN_PROGRESS
            status.change(Message.objects.get(pk=b.pk), S.UNDELIVERED)
            progress.refresh(sendout.pk)
            progress.refresh(sendout.pk)
        assert Sendout.objects.get(pk=sendout.pk).status == SendoutStatus.COMPLETED_WITH_FAILURES
        assert completed == [sendout.pk]  # once, however often it is refreshed
    finally:
        signals.sendout_completed.disconnect(dispatch_uid="t")


def test_scheduled_sendout_shows_scheduled():
    sendout = new_sendout()
    make(2, scheduled=True, sendout=sendout)
    assert progress.refresh(sendout.pk) == SendoutStatus.SCHEDULED


def test_cancel_sendout_handles_more_rows_than_one_statement_may_name():
    sendout = new_sendout()
    Message.objects.bulk_create(
        [Message(sendout=sendout, to=f"+44791{i:07d}", content="x", status=S.QUEUED) for i in range(2000)]
    )
    assert api.cancel_sendout(sendout) == 2000
    assert Sendout.objects.get(pk=sendout.pk).status == SendoutStatus.CANCELLED


@given(st.dictionaries(st.sampled_from(list(S)), st.integers(min_value=1, max_value=5), min_size=1))
def test_a_message_in_flight_keeps_a_sendout_in_progress(counts):
    """The shortcut in progress.refresh: with a message at D7 and not final, the status is in progress."""
    sendout = SimpleNamespace(status=SendoutStatus.IN_PROGRESS, submitted_at=object(), dlr_level=3)
    derived = progress.derive_status(sendout, counts)
    if any(s in counts for s in (S.ACCEPTED, S.AT_SMSC, S.UNKNOWN)):
        assert derived == SendoutStatus.IN_PROGRESS


NOT_HANDED_OVER = (S.PENDING, S.QUEUED, S.SENDING)


@given(
    st.dictionaries(st.sampled_from(list(S)), st.integers(min_value=1, max_value=5), min_size=1),
    st.sampled_from([s for s in S if s not in NOT_HANDED_OVER]),
    st.sampled_from([0, 1, 2, 3]),
    st.sampled_from([SendoutStatus.SUBMITTING, SendoutStatus.IN_PROGRESS, SendoutStatus.COMPLETED]),
    st.booleans(),
)
def test_a_sent_message_settling_leaves_the_status_while_others_are_not_handed_over(counts, new, level, stored, sub):
    """What progress.refresh_after_send relies on to skip the count."""
    sendout = SimpleNamespace(status=stored, submitted_at=object() if sub else None, dlr_level=level)
    counts = {**counts, S.SENDING: counts.get(S.SENDING, 0) + 1}
    if not progress.settled(new, level) or sum(counts.get(s, 0) for s in NOT_HANDED_OVER) < 2:
        return
    after = {**counts, S.SENDING: counts[S.SENDING] - 1, new: counts.get(new, 0) + 1}
    assert progress.derive_status(sendout, after) == progress.derive_status(sendout, counts)


def test_a_window_is_spared_the_sendout_refresh_until_the_last_message_is_handed_over(
    monkeypatch, django_capture_on_commit_callbacks
):
    sendout = new_sendout()
    a, b, c = make(3, sendout=sendout)
    Message.objects.filter(sendout=sendout).update(dlr_level=0)  # accepted is as far as they go
    Sendout.objects.filter(pk=sendout.pk).update(dlr_level=0)
    refreshed = []
    real = progress.refresh
    monkeypatch.setattr(progress, "refresh", lambda pk: refreshed.append(pk) or real(pk))
    status.claim([a.pk, b.pk])
    with django_capture_on_commit_callbacks(execute=True):
        status.record_accepted([a.pk], d7_ids={a.pk: "id-a"})
    with django_capture_on_commit_callbacks(execute=True):
        status.record_accepted([b.pk], d7_ids={b.pk: "id-b"})  # c is still queued
    assert refreshed == []
    status.claim([c.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert status.record_accepted([c.pk], d7_ids={c.pk: "id-c"}) == [c.pk]
    assert refreshed == [sendout.pk]
    assert Sendout.objects.get(pk=sendout.pk).status == SendoutStatus.COMPLETED
    assert list(Message.objects.order_by("pk").values_list("d7_message_id", flat=True)) == ["id-a", "id-b", "id-c"]


def test_record_accepted_announces_each_message_while_receivers_are_connected(django_capture_on_commit_callbacks):
    a, b = make(2)
    status.claim([a.pk, b.pk])
    seen = []

    def receiver(message_id, old, new, **kwargs):
        seen.append((message_id, old, new))

    signals.message_status_changed.connect(receiver, weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert sorted(status.record_accepted([a.pk, b.pk], d7_ids={a.pk: "id-a", b.pk: "id-b"})) == [a.pk, b.pk]
    finally:
        signals.message_status_changed.disconnect(dispatch_uid="t")
    assert sorted(seen) == [(a.pk, S.SENDING, S.ACCEPTED), (b.pk, S.SENDING, S.ACCEPTED)]
    assert set(Message.objects.values_list("d7_message_id", flat=True)) == {"id-a", "id-b"}
