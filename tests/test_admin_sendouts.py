"""Following a sendout: the list, the sendout page, progress JSON, chart, export and actions."""

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from d7sms.client import Balance
from d7sms.errors import ServerError
from d7sms.models import AccountState, Sendout, SendoutStatus, Message
from tests.admin_data import S, make_sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

LIST = "/admin/d7sms/sendout/"


def page(sendout, suffix="change/"):
    return f"/admin/d7sms/sendout/{sendout.pk}/{suffix}"


# -- the list -------------------------------------------------------------------------------


def test_list_shows_name_status_schedule_recipients_progress_and_author(sender_client, sender_user):
    sendout = make_sendout([S.DELIVERED, S.DELIVERED, S.UNDELIVERED, S.ACCEPTED], created_by=sender_user)
    make_sendout([S.PENDING], name="Later", schedule_at=timezone.now() + timezone.timedelta(days=1), remote_schedule=True)
    html = sender_client.get(LIST).content.decode()
    assert "Spring sale" in html and "Later" in html
    assert 'data-status="in_progress"' in html and 'data-status="scheduled"' in html
    assert "at D7" in html and "at once" in html
    assert 'data-group="delivered" style="width: 50.0%"' in html
    assert 'data-group="failed" style="width: 25.0%"' in html
    assert 'data-group="accepted" style="width: 25.0%"' in html
    assert "75 %" in html
    assert "sender" in html  # created by
    assert sendout.recipient_count == 4


def _list_queries(client, n):
    AccountState.get()  # created once per installation; its first creation is not a page's cost
    Sendout.objects.all().delete()
    for i in range(n):
        make_sendout([S.DELIVERED, S.FAILED, S.QUEUED], name=f"Sendout {i}")
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST)
    assert response.status_code == 200 and len(response.context["cl"].result_list) == n
    return len(ctx.captured_queries), ctx


def test_list_query_count_does_not_grow_with_rows(sender_client):
    few, _ctx = _list_queries(sender_client, 5)
    many, ctx = _list_queries(sender_client, 50)
    assert few == many, "\n".join(q["sql"] for q in ctx.captured_queries)
    assert many == 8  # session, user, 2 x permissions, count, page, progress counts, balance
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    # One bounded count for the paginator, one grouped count for the progress bars; no full COUNT(*).
    assert len(counts) == 2 and all("LIMIT" in sql.upper() or "GROUP BY" in sql.upper() for sql in counts)


def test_list_filters_and_search(sender_client):
    make_sendout([S.DELIVERED], name="Alpha")
    make_sendout([S.CANCELLED], name="Beta", status=SendoutStatus.CANCELLED)
    response = sender_client.get(LIST + "?status__exact=cancelled")
    assert [b.name for b in response.context["cl"].result_list] == ["Beta"]
    response = sender_client.get(LIST + "?q=alp")
    assert [b.name for b in response.context["cl"].result_list] == ["Alpha"]


def test_list_escapes_names(sender_client):
    make_sendout([S.DELIVERED], name="<script>alert(1)</script>")
    html = sender_client.get(LIST).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_viewers_see_no_compose_link_and_no_send_actions(viewer_client, sender_client):
    make_sendout([S.DELIVERED])
    html = viewer_client.get(LIST).content.decode()
    assert "/compose/" not in html and "cancel_selected" not in html and "retry_failed_selected" not in html
    html = sender_client.get(LIST).content.decode()
    assert "/admin/d7sms/sendout/compose/" in html and "cancel_selected" in html and "retry_failed_selected" in html


def test_list_shows_the_balance_panel(sender_client):
    AccountState.objects.create(pk=1, balance=Decimal("3.5"), balance_read_at=timezone.now())
    html = sender_client.get(LIST).content.decode()
    assert 'id="d7sms-balance"' in html and "3.5" in html and "below 10" in html


# -- the sendout page -------------------------------------------------------------------------


def test_sendout_page_shows_counts_progress_chart_and_failures(sender_client):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED, S.UNDELIVERED, S.QUEUED])
    response = sender_client.get(page(sendout))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-progress-url="/admin/d7sms/sendout/{sendout.pk}/progress/"' in html
    # The chart is inline, so the page's theme colours it; the script refreshes it from chart.svg.
    assert f'data-chart-url="/admin/d7sms/sendout/{sendout.pk}/chart.svg"' in html
    assert 'id="d7-chart-box"><svg' in html and "Delivered: 1" in html
    assert 'data-count="delivered">1<' in html and 'data-count="undelivered">2<' in html
    assert "2 failed recipients" in html
    assert "could not deliver it to the phone" in html and "err 001" in html
    assert 'id="d7-retry"' in html and 'id="d7-cancel"' in html
    assert "d7sms/progress.js" in html
    assert 'name="_save"' not in html  # a sendout is not edited by hand


def test_sendout_page_offers_cancel_only_while_something_waits(sender_client):
    sendout = make_sendout([S.DELIVERED, S.ACCEPTED])
    html = sender_client.get(page(sendout)).content.decode()
    assert 'id="d7-cancel"' not in html and 'id="d7-retry"' not in html


def test_viewers_see_the_sendout_without_actions(viewer_client):
    sendout = make_sendout([S.UNDELIVERED, S.QUEUED])
    html = viewer_client.get(page(sendout)).content.decode()
    assert "1 failed recipient" in html
    assert 'id="d7-cancel"' not in html and 'id="d7-retry"' not in html and "d7-cancel-form" not in html


def test_sendout_page_of_a_missing_sendout(sender_client):
    assert sender_client.get("/admin/d7sms/sendout/999/change/", follow=True).status_code == 200
    assert sender_client.get("/admin/d7sms/sendout/999/progress/").status_code == 404


# -- progress JSON and chart ------------------------------------------------------------------


def test_progress_json(viewer_client):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED, S.AT_SMSC, S.QUEUED])
    response = viewer_client.get(page(sendout, "progress/"))
    assert response["Content-Type"] == "application/json" and "no-store" in response["Cache-Control"]
    data = response.json()
    assert data["total"] == 4 and data["done"] is False and data["done_percent"] == 50
    assert data["groups"] == {"delivered": 1, "failed": 1, "accepted": 1, "waiting": 1, "cancelled": 0}
    assert data["percent"]["delivered"] == 25.0
    assert data["status"] == "in_progress" and data["tone"] == "busy"
    assert data["counts"] == {"delivered": 1, "undelivered": 1, "at_smsc": 1, "queued": 1}


def test_progress_json_when_done(viewer_client):
    sendout = make_sendout([S.DELIVERED, S.EXPIRED])
    data = viewer_client.get(page(sendout, "progress/")).json()
    assert data["done"] is True and data["done_percent"] == 100 and data["status"] == "completed_with_failures"


def test_progress_json_needs_view_permission(client, django_user_model):
    sendout = make_sendout([S.DELIVERED])
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(page(sendout, "progress/")).status_code == 403
    client.logout()
    assert client.get(page(sendout, "progress/")).status_code == 302


def test_chart_draws_deliveries_over_time(viewer_client):
    sendout = make_sendout([S.DELIVERED, S.DELIVERED, S.UNDELIVERED, S.QUEUED])
    response = viewer_client.get(page(sendout, "chart.svg"))
    svg = response.content.decode()
    assert response["Content-Type"] == "image/svg+xml"
    assert svg.startswith("<svg") and svg.count("<polygon") == 2
    assert "Delivered: 2" in svg and "Failed: 1" in svg and "Recipients: 4" in svg


def test_chart_of_a_sendout_without_reports(viewer_client):
    sendout = make_sendout([S.QUEUED])
    svg = viewer_client.get(page(sendout, "chart.svg")).content.decode()
    assert "No delivery reports yet" in svg and "<polygon" not in svg


def test_chart_spreads_reports_over_minutes(viewer_client):
    from d7sms.admin.progress_views import delivery_series

    sendout = make_sendout([S.DELIVERED] * 3)
    start = timezone.now() - timezone.timedelta(minutes=30)
    for i, message in enumerate(sendout.messages.order_by("pk")):
        Message.objects.filter(pk=message.pk).update(
            accepted_at=start, final_at=start + timezone.timedelta(minutes=10 * i)
        )
    points, (step, _label) = delivery_series(sendout)
    assert step == timezone.timedelta(minutes=1)
    assert [p[1] for p in points] == [0, 1, 2, 3]


# -- export -------------------------------------------------------------------------------------


def test_export_csv(viewer_client):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED])
    Message.objects.filter(sendout=sendout, status=S.UNDELIVERED).update(last_error="=HYPERLINK(evil)")
    response = viewer_client.get(page(sendout, "export.csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="sendout-{sendout.pk}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["status"] for r in rows] == ["delivered", "undelivered"]
    assert rows[0]["to"].startswith("+44")
    assert rows[1]["last_error"] == "'=HYPERLINK(evil)"
    assert "could not deliver" in rows[1]["reason"]


# -- actions ------------------------------------------------------------------------------------


def test_cancel_stops_what_has_not_been_handed_to_d7(sender_client, locmem):
    sendout = make_sendout([S.PENDING, S.PENDING], schedule_at=timezone.now() + timezone.timedelta(days=1))
    response = sender_client.post(page(sendout, "cancel/"), follow=True)
    assert response.redirect_chain[-1][0] == page(sendout)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.CANCELLED}
    assert Sendout.objects.get(pk=sendout.pk).status == SendoutStatus.CANCELLED
    assert "2 messages cancelled" in response.content.decode()


def test_cancel_with_nothing_left_warns(sender_client, locmem):
    sendout = make_sendout([S.DELIVERED])
    response = sender_client.post(page(sendout, "cancel/"), follow=True)
    assert "nothing left to cancel" in response.content.decode()


def test_retry_failed_resends_failures_as_new_messages(sender_client, locmem):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED, S.EXPIRED])
    response = sender_client.post(page(sendout, "retry/"), follow=True)
    assert "2 failed messages sent again" in response.content.decode()
    assert Message.objects.filter(sendout=sendout, resend_of__isnull=False).count() == 2
    response = sender_client.post(page(sendout, "retry/"), follow=True)
    assert "no failed message to retry" in response.content.decode()


@pytest.mark.parametrize("action", ["cancel/", "retry/"])
def test_actions_need_post_and_the_send_permission(sender_client, viewer_client, action):
    sendout = make_sendout([S.QUEUED, S.FAILED])
    assert sender_client.get(page(sendout, action)).status_code == 405
    assert viewer_client.post(page(sendout, action)).status_code == 403
    assert set(sendout.messages.values_list("status", flat=True)) == {S.QUEUED, S.FAILED}


def test_list_actions_cancel_and_retry(sender_client, locmem):
    waiting = make_sendout([S.QUEUED], name="waiting")
    failed = make_sendout([S.FAILED], name="failed")
    ids = [str(waiting.pk), str(failed.pk)]
    sender_client.post(LIST, {"action": "cancel_selected", "_selected_action": ids})
    assert waiting.messages.get().status == S.CANCELLED
    sender_client.post(LIST, {"action": "retry_failed_selected", "_selected_action": ids})
    assert failed.messages.filter(resend_of__isnull=False).count() == 1


def test_list_actions_are_refused_to_viewers(viewer_client):
    sendout = make_sendout([S.QUEUED])
    response = viewer_client.post(LIST, {"action": "cancel_selected", "_selected_action": [sendout.pk]})
    assert sendout.messages.get().status == S.QUEUED
    assert response.status_code in (200, 302)


# -- balance --------------------------------------------------------------------------------------


def test_balance_refresh_reads_and_stores_the_balance(sender_client, locmem, monkeypatch):
    monkeypatch.setattr(locmem, "balance", Balance(Decimal("42.50"), None))
    response = sender_client.post(LIST + "balance/refresh/", {"next": "/admin/d7sms/"})
    assert response.status_code == 302 and response["Location"] == "/admin/d7sms/"
    state = AccountState.get()
    assert state.balance == Decimal("42.50") and state.balance_read_at is not None
    html = sender_client.get("/admin/d7sms/").content.decode()
    assert "Balance read from D7: 42.50" in html and "42.5" in html


def test_balance_refresh_failure_is_shown(sender_client, locmem):
    locmem.inject(ServerError("D7 is down", status_code=503))
    response = sender_client.post(LIST + "balance/refresh/", {"next": "https://evil.example/"}, follow=True)
    assert response.redirect_chain[-1][0] == LIST
    assert "could not be read" in response.content.decode()


def test_balance_refresh_is_a_post_for_staff_who_may_view(sender_client, client, django_user_model):
    assert sender_client.get(LIST + "balance/refresh/").status_code == 405
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    assert client.post(LIST + "balance/refresh/").status_code == 403


def test_app_index_shows_balance_warning_and_pause(viewer_client):
    AccountState.objects.create(
        pk=1, balance=Decimal(2), balance_read_at=timezone.now(), paused=True, pause_reason="No credit <b>left</b>"
    )
    html = viewer_client.get("/admin/d7sms/").content.decode()
    assert 'id="d7sms-balance"' in html and "Refresh balance" in html
    assert "below 10" in html and "Sending is paused" in html
    assert "No credit &lt;b&gt;left&lt;/b&gt;" in html
    assert "/admin/d7sms/message/attention/" in html


def test_app_index_without_a_reading(viewer_client):
    html = viewer_client.get("/admin/d7sms/").content.decode()
    assert "not read yet" in html and "below" not in html


def test_balance_panel_is_hidden_from_staff_without_d7sms_permissions(client, django_user_model):
    user = django_user_model.objects.create_user("other", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(user)
    html = client.get("/admin/d7sms/").content.decode()
    assert 'id="d7sms-balance"' not in html


def test_balance_panel_tag_works_in_a_project_template(rf, viewer_user):
    from django.template import Context, Template

    request = rf.get("/admin/")
    request.user = viewer_user
    html = Template("{% load d7sms_admin %}{% d7sms_balance_panel %}").render(Context({"request": request}))
    assert 'id="d7sms-balance"' in html and 'action="/admin/d7sms/sendout/balance/refresh/"' in html
