"""The message log as staff use it: what each row shows, search by any digits of a number,
export of exactly the filtered list, and a query count that does not grow with the rows."""

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from d7sms.models import Message
from tests.admin_data import S, make_sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

LIST = "/admin/d7sms/message/"
EXPORT = "/admin/d7sms/message/export.csv"


@pytest.fixture
def priced(settings):
    settings.D7SMS = {**settings.D7SMS, "PRICE_PER_PART": Decimal("0.05"), "CURRENCY": "EUR"}


def shown(response):
    return [m.to for m in response.context["cl"].result_list]


def exported(client, query=""):
    response = client.get(EXPORT + query)
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def message(to, status=S.DELIVERED, **fields):
    now = timezone.now()
    defaults = {"content": "Hello", "sender": "D7sms", "parts": 1, "submitted_at": now, "accepted_at": now}
    return Message.objects.create(to=to, status=status, **{**defaults, **fields})


# -- columns --------------------------------------------------------------------------------


def test_each_row_shows_text_sender_status_with_reason_parts_cost_and_attempt(viewer_client, priced):
    long_text = "Our spring sale starts on Monday with twenty percent off everything in store"
    sent = message("+447911200010", content=long_text, sender="MyShop", parts=2)
    refused = message("+447911200027", status=S.REJECTED, error_code="NoRoute", last_error="No route found")
    again = message("+447911200027", status=S.DELIVERED, resend_of=refused)
    html = viewer_client.get(LIST).content.decode()
    assert ">Our spring sale starts on Monday with t…<" in html and f'title="{long_text}"' in html  # trimmed, whole as title
    assert "MyShop" in html
    assert "D7 has no route to this number" in html  # the status says why
    assert "0.10 EUR" in html  # 2 parts x 0.05
    row = html[html.index(f"/admin/d7sms/message/{again.pk}/change/"):]
    assert f'resend of <a href="/admin/d7sms/message/{refused.pk}/change/">#{refused.pk}</a>' in row
    # D7 refused it before any operator took it: nothing was charged.
    refused_row = html[html.index(f"/admin/d7sms/message/{refused.pk}/change/"):]
    assert "0.05 EUR" not in refused_row.split("</tr>")[0]
    assert sent.pk


def test_tests_are_marked_and_found_with_their_filter(viewer_client):
    sendout = make_sendout([S.DELIVERED])
    test = message("+447911200040", is_test=True)
    lone = message("+447911200050")  # send_sms: no sendout, not a test
    html = viewer_client.get(LIST).content.decode()
    assert "Tests (“Send a test to me”)" in html  # offered as a choice of the sendout filter
    rows = {m.pk: html[html.index(f"/admin/d7sms/message/{m.pk}/change/"):].split("</tr>")[0]
            for m in (test, lone, sendout.messages.get())}
    assert "data-test" in rows[test.pk] and ">test</span>" in rows[test.pk]
    assert "data-test" not in rows[lone.pk] and "data-test" not in rows[sendout.messages.get().pk]
    assert shown(viewer_client.get(LIST + "?sendout=tests")) == [test.to]
    assert [r["to"] for r in exported(viewer_client, "?sendout=tests")] == [test.to]


def _tests_list_queries(client, n):
    _clear()
    for i in range(n):
        message(f"+4479112001{i:02d}", is_test=True)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST + "?sendout=tests")
        assert len(response.context["cl"].result_list) == n
    return len(ctx.captured_queries), ctx


def test_the_tests_filter_and_marker_cost_no_query_per_row(viewer_client):
    few, _ = _tests_list_queries(viewer_client, 5)
    many, ctx = _tests_list_queries(viewer_client, 50)
    assert few == many, "\n".join(q["sql"] for q in ctx.captured_queries)


def test_cost_is_blank_without_a_price(viewer_client):
    message("+447911200030", parts=3)
    html = viewer_client.get(LIST).content.decode()
    assert "EUR" not in html and 'class="field-cost">–<' in html


# -- search -----------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["123459", "+44 1234 59", "598765", "441234598765", "+441234598765"])
def test_search_finds_any_run_of_digits_of_a_number(viewer_client, term):
    wanted = message("+441234598765")
    message("+447911123450")
    assert shown(viewer_client.get(LIST, {"q": term})) == [wanted.to]


def test_search_still_finds_a_national_number_and_a_d7_id(viewer_client):
    wanted = message("+447911123456", d7_message_id="c723d42a-c3ee-452c-940b-3d8e8b944868")
    message("+447911654321")
    assert shown(viewer_client.get(LIST, {"q": "07911 123456"})) == [wanted.to]
    assert shown(viewer_client.get(LIST, {"q": "c723d42a-c3ee-452c-940b-3d8e8b944868"})) == [wanted.to]
    assert shown(viewer_client.get(LIST, {"q": "no digits here"})) == []


# -- export -----------------------------------------------------------------------------------


def test_export_has_exactly_the_filtered_and_searched_list(viewer_client, priced):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED, S.UNDELIVERED], name="Export me")
    other = make_sendout([S.UNDELIVERED], name="Not me")
    Message.objects.filter(sendout=sendout).update(submitted_at=timezone.now(), parts=2)
    first_failed = sendout.messages.filter(status=S.UNDELIVERED).order_by("pk").first()

    query = f"?sendout={sendout.pk}&status=undelivered"
    assert sorted(r["to"] for r in exported(viewer_client, query)) == sorted(shown(viewer_client.get(LIST + query)))
    rows = exported(viewer_client, query)
    assert len(rows) == 2 and other.messages.get().to not in {r["to"] for r in rows}
    assert {r["status"] for r in rows} == {"undelivered"}
    assert {r["sendout"] for r in rows} == {"Export me"}
    assert {(r["parts"], r["cost"], r["currency"]) for r in rows} == {("2", "0.10", "EUR")}
    assert "could not deliver" in rows[0]["reason"]

    searched = exported(viewer_client, query + "&q=" + first_failed.to[-6:])
    assert [r["to"] for r in searched] == [first_failed.to]
    assert len(exported(viewer_client)) == 4  # no filter: everything


def test_the_list_links_its_export_with_its_filters(viewer_client):
    make_sendout([S.DELIVERED])
    html = viewer_client.get(LIST + "?status=delivered&q=7911").content.decode()
    assert 'href="/admin/d7sms/message/export.csv?status=delivered&amp;q=7911"' in html


def test_export_needs_the_view_permission(django_user_model, client):
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(EXPORT).status_code == 403


def test_export_of_unreadable_filters_is_refused_clearly(viewer_client):
    response = viewer_client.get(EXPORT + "?created_at__gte=not-a-date")
    assert response.status_code == 400 and b"filters cannot be read" in response.content


# -- query counts -----------------------------------------------------------------------------


def _clear():
    Message.objects.all().delete()  # originals with their copies (see the constraint on Message)


def _queries(client, url, n):
    _clear()
    sendout = make_sendout([S.UNDELIVERED, S.DELIVERED, S.REJECTED, S.FAILED, S.EXPIRED] * (n // 5))
    for original in list(sendout.messages.filter(status=S.UNDELIVERED)):
        Message.objects.filter(pk=original.pk).update(resend_token="00000000-0000-0000-0000-000000000001")
        message(original.to, sendout=sendout, resend_of=original)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url.format(sendout=sendout.pk))
        if isinstance(response, StreamingHttpResponse):
            body = b"".join(response.streaming_content)
            assert body.count(b"\n") == n + n // 5 + 1
        else:
            assert len(response.context["cl"].result_list) == n + n // 5
    return len(ctx.captured_queries), ctx


@pytest.mark.parametrize(
    "url", [LIST, LIST + "?q=7911&attempt=resend&resent=no", LIST + "?sendout={sendout}&reason=UNDELIV", EXPORT, EXPORT + "?q=7911"]
)
def test_query_count_does_not_grow_with_rows(sender_client, priced, url):
    if "reason" in url or "attempt" in url:
        # Fewer rows match these filters; count the queries only.
        few, _ = _count_only(sender_client, url, 5)
        many, ctx = _count_only(sender_client, url, 50)
    else:
        few, _ = _queries(sender_client, url, 5)
        many, ctx = _queries(sender_client, url, 50)
    assert few == many, "\n".join(q["sql"] for q in ctx.captured_queries)
    assert many <= 8


def _count_only(client, url, n):
    _clear()
    sendout = make_sendout([S.UNDELIVERED, S.DELIVERED] * n)
    for original in list(sendout.messages.filter(status=S.UNDELIVERED)):
        Message.objects.filter(pk=original.pk).update(resend_token="00000000-0000-0000-0000-000000000001")
        message(original.to, sendout=sendout, resend_of=original)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url.format(sendout=sendout.pk))
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == n  # the undelivered originals, or their resends
    return len(ctx.captured_queries), ctx
