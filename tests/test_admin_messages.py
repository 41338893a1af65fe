"""Managing messages: the list, one message's history and reason, resend, cancel, attention."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from d7sms.admin import paging
from d7sms.models import AccountState, BatchCallback, DeliveryReport, Message
from tests.admin_data import S, make_sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

LIST = "/admin/d7sms/message/"
ATTENTION = "/admin/d7sms/message/attention/"


def page(message, suffix="change/"):
    return f"/admin/d7sms/message/{message.pk}/{suffix}"


def shown(response):
    return [m.to for m in response.context["cl"].result_list]


# -- the list -------------------------------------------------------------------------------


def test_list_columns(viewer_client):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED])
    html = viewer_client.get(LIST).content.decode()
    assert 'data-status="delivered"' in html and 'data-status="undelivered"' in html
    assert sendout.name in html
    assert "The operator could not deliver" in html  # the reason, shortened, with the full text as title


def test_list_filters_by_status_group_batch_and_date(viewer_client):
    first = make_sendout([S.DELIVERED, S.UNDELIVERED, S.QUEUED], name="First")
    second = make_sendout([S.EXPIRED], name="Second")
    to = lambda sendout, status: sendout.messages.get(status=status).to
    assert shown(viewer_client.get(LIST + "?status=failures")) == [to(second, S.EXPIRED), to(first, S.UNDELIVERED)]
    assert shown(viewer_client.get(LIST + "?status=waiting")) == [to(first, S.QUEUED)]
    assert shown(viewer_client.get(LIST + "?status=delivered")) == [to(first, S.DELIVERED)]
    assert len(shown(viewer_client.get(LIST + f"?sendout={first.pk}"))) == 3
    html = viewer_client.get(LIST + f"?sendout={first.pk}").content.decode()
    assert "First" in html and "Second" in html  # recent sendouts are offered as filter choices
    Message.objects.filter(sendout=second).update(created_at=timezone.now() - timezone.timedelta(days=40))
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert len(shown(viewer_client.get(LIST, {"created_at__gte": str(midnight)}))) == 3


def test_sendout_filter_offers_an_old_sendout_when_chosen(viewer_client):
    old = make_sendout([S.DELIVERED], name="Old one")
    from d7sms.admin.message_filters import RECENT_SENDOUTS

    for i in range(RECENT_SENDOUTS):
        make_sendout([], name=f"New {i}")
    html = viewer_client.get(LIST + f"?sendout={old.pk}").content.decode()
    assert "Old one" in html


def test_search_by_number_in_any_format_and_by_d7_id(viewer_client):
    sendout = make_sendout([S.DELIVERED, S.DELIVERED])
    first, second = sendout.messages.order_by("pk")
    Message.objects.filter(pk=second.pk).update(d7_message_id="abc-123")
    national = "0" + first.to[3:]
    assert shown(viewer_client.get(LIST, {"q": national})) == [first.to]
    assert shown(viewer_client.get(LIST, {"q": first.to})) == [first.to]
    assert shown(viewer_client.get(LIST, {"q": "abc-123"})) == [second.to]
    assert shown(viewer_client.get(LIST, {"q": "nothing"})) == []


def _list_queries(client, n, url=LIST):
    AccountState.get()
    Message.objects.all().delete()
    sendout = make_sendout([S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED, S.UNDELIVERED] * (n // 5))
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url.format(sendout=sendout.pk))
    assert response.status_code == 200 and len(response.context["cl"].result_list) == n
    return len(ctx.captured_queries), ctx


@pytest.mark.parametrize("url", [LIST, LIST + "?status=failures", LIST + "?o=-2&sendout={sendout}"])
def test_list_query_count_does_not_grow_with_rows(sender_client, url):
    few, _ctx = _list_queries(sender_client, 5, url)
    many, ctx = _list_queries(sender_client, 50, url)
    assert few == many, "\n".join(q["sql"] for q in ctx.captured_queries)
    assert many <= 7  # session, user, 2 x permissions, sendout filter choices, count, page
    assert not any(
        "COUNT(" in q["sql"].upper() and "LIMIT" not in q["sql"].upper() for q in ctx.captured_queries
    ), "a full COUNT(*) was run"


def test_very_large_lists_are_not_counted_in_full(viewer_client, monkeypatch):
    monkeypatch.setattr(paging.CappedPaginator, "count_limit", 4)
    make_sendout([S.DELIVERED] * 12)
    response = viewer_client.get(LIST + "?p=1")
    html = response.content.decode()
    assert response.context["cl"].paginator.capped is True
    assert re.search(r"about [0-9,]+ or more", html) and "narrow the list" in html
    monkeypatch.setattr(paging.CappedPaginator, "count_limit", 100)
    html = viewer_client.get(LIST).content.decode()
    assert "12 messages" in html


def test_the_other_report_lists_are_bounded_too(viewer_client):
    for url in ("/admin/d7sms/deliveryreport/", "/admin/d7sms/batchcallback/"):
        response = viewer_client.get(url)
        assert response.status_code == 200
        assert response.context["cl"].paginator.__class__ is paging.CappedPaginator


# -- one message ------------------------------------------------------------------------------


def _reported(message):
    now = timezone.now()
    DeliveryReport.objects.create(message=message, d7_message_id="d7-1", level=1, message_status="ESME_ROK", applied_at=now)
    DeliveryReport.objects.create(
        message=message, d7_message_id="d7-1", level=2, message_status="UNDELIV", err="001", applied_at=now,
        params={"err": "001", "text": "<script>x</script>"},
    )
    BatchCallback.objects.create(
        message=message, sendout=message.sendout, kind="callback", to=message.to[1:], status=1,
        status_text='Success "d7-1"', d7_message_id="d7-1", applied_at=now,
    )


def test_message_page_shows_why_and_its_history(viewer_client):
    message = make_sendout([S.UNDELIVERED]).messages.get()
    _reported(message)
    html = viewer_client.get(page(message)).content.decode()
    assert "The operator could not deliver it to the phone" in html and "err 001" in html
    assert 'data-status="undelivered"' in html
    assert "ESME_ROK" in html and "UNDELIV" in html and "Success &quot;d7-1&quot;" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert 'id="d7-resend"' not in html  # a viewer cannot resend


@pytest.mark.parametrize(
    ("status", "code", "error", "text"),
    [
        (S.REJECTED, "REJECTD", "delivery receipt REJECTD", "rejected the message"),
        (S.FAILED, "ESME_RSUBMITFAIL", "SMSC refused the message: ESME_RSUBMITFAIL", "refused it (ESME_RSUBMITFAIL)"),
        (S.FAILED, "errback", "HTTPAPI error: No route found", "No route found"),
        (S.EXPIRED, "EXPIRED", "", "before the message expired"),
        (S.UNKNOWN, "", "Read timed out", "may or may not have been sent"),
        (S.DELIVERED, "", "", "Delivered to the phone"),
        (S.ACCEPTED, "", "", "Not final yet"),
    ],
)
def test_message_page_explains_each_outcome(viewer_client, status, code, error, text):
    message = make_sendout([status]).messages.get()
    Message.objects.filter(pk=message.pk).update(error_code=code, last_error=error)
    assert text in viewer_client.get(page(message)).content.decode()


def test_message_page_offers_resend_and_cancel_to_senders(sender_client):
    queued, failed = make_sendout([S.QUEUED, S.FAILED]).messages.order_by("pk")
    html = sender_client.get(page(queued)).content.decode()
    assert 'id="d7-resend"' not in html and 'id="d7-cancel"' in html  # still on its way: cancel, not resend
    html = sender_client.get(page(failed)).content.decode()
    assert 'id="d7-resend"' in html and 'id="d7-cancel"' not in html
    assert 'name="_save"' not in html


def test_resend_creates_a_new_linked_message(sender_client, sender_user, locmem):
    original = make_sendout([S.UNDELIVERED]).messages.get()
    response = sender_client.post(page(original, "resend/"), follow=True)
    new = Message.objects.get(resend_of=original)
    assert response.redirect_chain[-1][0] == page(new)
    assert new.to == original.to and new.created_by == sender_user
    assert Message.objects.get(pk=original.pk).status == S.UNDELIVERED
    assert f"as a new message #{new.pk}" in response.content.decode()
    html = sender_client.get(page(original)).content.decode()
    assert f'href="/admin/d7sms/message/{new.pk}/change/"' in html  # "resent as"


def test_resend_of_a_message_still_on_its_way_is_refused(sender_client, locmem):
    message = make_sendout([S.QUEUED]).messages.get()
    response = sender_client.post(page(message, "resend/"), follow=True)
    assert "cancel it instead" in response.content.decode()
    assert not Message.objects.filter(resend_of=message).exists()


def test_cancel_a_queued_message(sender_client, locmem):
    queued, delivered = make_sendout([S.QUEUED, S.DELIVERED]).messages.order_by("pk")
    response = sender_client.post(page(queued, "cancel/"), follow=True)
    assert Message.objects.get(pk=queued.pk).status == S.CANCELLED
    assert "cancelled" in response.content.decode()
    response = sender_client.post(page(delivered, "cancel/"), follow=True)
    assert Message.objects.get(pk=delivered.pk).status == S.DELIVERED
    assert "was not cancelled" in response.content.decode()


@pytest.mark.parametrize("action", ["resend/", "cancel/"])
def test_message_actions_need_post_and_the_send_permission(sender_client, viewer_client, action):
    message = make_sendout([S.QUEUED]).messages.get()
    # A GET of resend/ only asks (it shows what was sent); cancel/ takes no GET at all.
    assert sender_client.get(page(message, action)).status_code == (200 if action == "resend/" else 405)
    assert viewer_client.get(page(message, action)).status_code in (403, 405)
    assert viewer_client.post(page(message, action)).status_code == 403
    assert Message.objects.get(pk=message.pk).status == S.QUEUED
    assert not Message.objects.filter(resend_of=message).exists()


def test_list_actions_resend_and_cancel(sender_client, viewer_client, locmem):
    queued, failed = make_sendout([S.QUEUED, S.FAILED]).messages.order_by("pk")
    assert "resend_selected" not in viewer_client.get(LIST).content.decode()
    sender_client.post(LIST, {"action": "resend_selected", "_selected_action": [failed.pk]})
    assert Message.objects.filter(resend_of=failed).count() == 1
    sender_client.post(LIST, {"action": "cancel_selected", "_selected_action": [queued.pk]})
    assert Message.objects.get(pk=queued.pk).status == S.CANCELLED


# -- needs attention and reports ------------------------------------------------------------


def test_attention_page_lists_unknown_orphans_callbacks_and_pause(viewer_client):
    message = make_sendout([S.UNKNOWN, S.DELIVERED]).messages.get(status=S.UNKNOWN)
    DeliveryReport.objects.create(d7_message_id="lost-1", level=2, message_status="DELIVRD", problem="orphan: no message")
    BatchCallback.objects.create(kind="errback", to="4479", status_text="<b>bad</b>", problem="no such message")
    AccountState.objects.create(pk=1, paused=True, pause_reason="Authentication failure")
    response = viewer_client.get(ATTENTION)
    html = response.content.decode()
    counts = {item["key"]: item["count"] for item in response.context["items"]}
    assert counts == {"unknown": 1, "orphans": 1, "callbacks": 1}
    assert message.to in html and "lost-1" in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "Sending is paused" in html and "Authentication failure" in html
    assert 'id="d7-all-clear"' not in html


def test_attention_page_when_all_is_well(viewer_client):
    html = viewer_client.get(ATTENTION).content.decode()
    assert 'id="d7-all-clear"' in html


def test_attention_page_needs_view_permission(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(ATTENTION).status_code == 403


def test_account_state_entry_opens_the_attention_page(viewer_client):
    response = viewer_client.get("/admin/d7sms/accountstate/")
    assert response.status_code == 302 and response["Location"] == ATTENTION


def test_report_lists_filter_orphans_and_problems(viewer_client):
    message = make_sendout([S.DELIVERED]).messages.get()
    DeliveryReport.objects.create(message=message, d7_message_id="a", level=2, message_status="DELIVRD")
    DeliveryReport.objects.create(d7_message_id="b", level=2, message_status="DELIVRD", problem="orphan")
    BatchCallback.objects.create(kind="callback", to="1", problem="unmatched")
    BatchCallback.objects.create(kind="callback", to="2", applied_at=timezone.now())
    ids = lambda r: sorted(x.d7_message_id for x in r.context["cl"].result_list)
    assert ids(viewer_client.get("/admin/d7sms/deliveryreport/?orphan=yes")) == ["b"]
    assert ids(viewer_client.get("/admin/d7sms/deliveryreport/?orphan=no")) == ["a"]
    assert ids(viewer_client.get("/admin/d7sms/deliveryreport/?q=a")) == ["a"]
    tos = lambda r: sorted(x.to for x in r.context["cl"].result_list)
    assert tos(viewer_client.get("/admin/d7sms/batchcallback/?problem=yes")) == ["1"]
    assert tos(viewer_client.get("/admin/d7sms/batchcallback/?problem=no")) == ["2"]
    report = DeliveryReport.objects.get(d7_message_id="b")
    response = viewer_client.get(f"/admin/d7sms/deliveryreport/{report.pk}/change/")
    assert response.status_code == 200 and 'name="_save"' not in response.content.decode()


def test_report_list_filters_by_level_and_status_without_reading_the_table(viewer_client):
    DeliveryReport.objects.create(d7_message_id="one", level=1, message_status="ESME_RSUBMITFAIL")
    DeliveryReport.objects.create(d7_message_id="two", level=2, message_status="DELIVRD")
    ids = lambda r: [x.d7_message_id for x in r.context["cl"].result_list]
    assert ids(viewer_client.get("/admin/d7sms/deliveryreport/?level=1")) == ["one"]
    assert ids(viewer_client.get("/admin/d7sms/deliveryreport/?message_status=DELIVRD")) == ["two"]
    assert ids(viewer_client.get("/admin/d7sms/deliveryreport/?message_status=other")) == ["one"]
    AccountState.get()
    with CaptureQueriesContext(connection) as ctx:
        viewer_client.get("/admin/d7sms/deliveryreport/")
    assert not any("DISTINCT" in q["sql"].upper() for q in ctx.captured_queries)


def test_unknown_messages_are_marked_failed_or_resent_by_a_person(sender_client, locmem):
    first, second, delivered = make_sendout([S.UNKNOWN, S.UNKNOWN, S.DELIVERED]).messages.order_by("pk")
    assert sender_client.get(ATTENTION).context["items"][0]["count"] == 2
    sender_client.post(LIST, {"action": "mark_failed", "_selected_action": [first.pk, delivered.pk]})
    first.refresh_from_db()
    assert first.status == S.FAILED and first.error_code == "unknown" and "sender" in first.last_error
    assert Message.objects.get(pk=delivered.pk).status == S.DELIVERED
    assert "staff decided the message did not arrive" in sender_client.get(page(first)).content.decode()
    sender_client.post(page(second, "resend/"))
    item = sender_client.get(ATTENTION).context["items"][0]
    assert item["count"] == 0  # resent: decided, though the original stays unknown
    assert shown(sender_client.get(LIST + "?status=unknown&resent=yes")) == [second.to]
    assert shown(sender_client.get(LIST + "?status=unknown&resent=no")) == []


def test_every_state_changing_url_needs_csrf(sender_user, locmem):
    from django.test import Client

    sendout = make_sendout([S.QUEUED, S.FAILED])
    queued, failed = sendout.messages.order_by("pk")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(sender_user)
    for path in (
        f"/admin/d7sms/sendout/{sendout.pk}/cancel/",
        f"/admin/d7sms/sendout/{sendout.pk}/retry/",
        "/admin/d7sms/sendout/balance/refresh/",
        "/admin/d7sms/sendout/compose/",
        page(queued, "cancel/"),
        page(failed, "resend/"),
    ):
        assert strict.post(path).status_code == 403, path
    assert set(sendout.messages.values_list("status", flat=True)) == {S.QUEUED, S.FAILED}
    assert sendout.messages.count() == 2


# -- deleting: only what never left for D7 ----------------------------------------------------


def _may_delete(user):
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="delete_message"))


def _resent(original, status):
    """A copy of ``original`` in ``status``, linked as a resend makes it."""
    Message.objects.filter(pk=original.pk).update(resend_token="00000000-0000-0000-0000-000000000001")
    return Message.objects.create(sendout=original.sendout, to=original.to, content="Hello", status=status,
                                  resend_of=original)


def _notices(response):
    return " ".join(str(m) for m in response.context["messages"])


def test_a_message_handed_to_d7_is_not_deleted_from_its_page(sender_client, sender_user):
    _may_delete(sender_user)
    delivered, failed = make_sendout([S.DELIVERED, S.FAILED]).messages.order_by("pk")
    _resent(failed, S.DELIVERED)  # the case that raised IntegrityError: an original with a resend
    for message in (delivered, failed):
        assert "deletelink" not in sender_client.get(page(message)).content.decode()
        for method in (sender_client.get, sender_client.post):
            response = method(page(message, "delete/"), {"post": "yes"}, follow=True)
            assert response.redirect_chain[-1][0] == page(message)
            assert f"Message #{message.pk} to {message.to} was not deleted: it was handed to D7" in _notices(response)
    assert Message.objects.count() == 3 and Message.objects.get(pk=failed.pk).resend_token is not None


def test_an_unsent_message_is_deleted_from_its_page(sender_client, sender_user):
    _may_delete(sender_user)
    queued, cancelled = make_sendout([S.QUEUED, S.CANCELLED]).messages.order_by("pk")
    for message in (queued, cancelled):
        assert "deletelink" in sender_client.get(page(message)).content.decode()
        assert sender_client.post(page(message, "delete/"), {"post": "yes"}).status_code == 302
    assert not Message.objects.exists()


def test_deleting_an_unsent_resend_makes_its_original_the_latest_attempt_again(sender_client, sender_user):
    _may_delete(sender_user)
    failed = make_sendout([S.FAILED]).messages.get()
    from django_q.models import Schedule

    from d7sms import tasks

    copy = _resent(failed, S.PENDING)  # e.g. held for quiet hours, then thought better of
    tasks.hold(when=timezone.now() + timezone.timedelta(hours=1), sendout_id=failed.sendout_id)
    assert sender_client.post(page(copy, "delete/"), {"post": "yes"}).status_code == 302
    assert not Message.objects.filter(pk=copy.pk).exists()
    assert Message.objects.get(pk=failed.pk).resend_token is None  # counted, and resendable, again
    assert not Schedule.objects.filter(name=tasks.schedule_name(failed.sendout_id)).exists()  # nothing left to fire


def test_an_unsent_message_sent_again_is_kept_until_its_copy_goes(sender_client, sender_user):
    _may_delete(sender_user)
    cancelled = make_sendout([S.CANCELLED]).messages.get()
    copy = _resent(cancelled, S.DELIVERED)
    response = sender_client.post(page(cancelled, "delete/"), {"post": "yes"}, follow=True)
    assert f"it was sent again as message #{copy.pk}" in _notices(response)
    assert Message.objects.count() == 2


def test_bulk_delete_removes_only_unsent_messages(sender_client, sender_user):
    _may_delete(sender_user)
    delivered, queued, cancelled, failed = make_sendout([S.DELIVERED, S.QUEUED, S.CANCELLED, S.FAILED]).messages.order_by("pk")
    unsent_copy = _resent(cancelled, S.CANCELLED)  # chosen with its original: both go, copy first
    sent_copy = _resent(failed, S.ACCEPTED)
    chosen = {"action": "delete_selected",
              "_selected_action": [m.pk for m in (delivered, queued, cancelled, unsent_copy, failed, sent_copy)]}
    confirm = sender_client.post(LIST, chosen)
    assert "Are you sure" in confirm.content.decode()
    said = _notices(confirm)
    assert all(f"Message #{m.pk} to {m.to} was not deleted" in said for m in (delivered, failed, sent_copy))
    done = sender_client.post(LIST, {**chosen, "post": "yes"}, follow=True)
    assert "Successfully deleted 3 messages" in _notices(done)
    assert set(Message.objects.values_list("pk", flat=True)) == {delivered.pk, failed.pk, sent_copy.pk}


def test_bulk_delete_of_sent_messages_only_explains(sender_client, sender_user):
    _may_delete(sender_user)
    accepted = make_sendout([S.ACCEPTED]).messages.get()
    response = sender_client.post(LIST, {"action": "delete_selected", "_selected_action": [accepted.pk], "post": "yes"},
                                  follow=True)
    assert "was not deleted: it was handed to D7" in _notices(response)
    assert Message.objects.filter(pk=accepted.pk).exists()


def test_a_message_handed_to_d7_while_being_deleted_is_kept():
    """The check runs after a waiting message is cancelled, in one transaction: one a worker
    took meanwhile (here: made ``sending`` just before) is kept, and nothing changes."""
    from d7sms.admin.archive import Kept, delete_unsent_message

    message = make_sendout([S.QUEUED]).messages.get()
    Message.objects.filter(pk=message.pk).update(status=S.SENDING)
    with pytest.raises(Kept, match="handed to D7"):
        delete_unsent_message(message)
    assert Message.objects.get(pk=message.pk).status == S.SENDING
