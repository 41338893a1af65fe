"""A sendout's figures are its recipients' figures, however often a message is sent again.

Each recipient counts once, by its latest attempt; resends and retries are shown as such and
linked; failures are grouped by reason, each group opening exactly its recipients in the
message list; the completion time stays when a resend or retry completes. The sendouts go
through the sandbox, and what reached it is counted there.
"""

import json
import re
from html import unescape

import pytest

import d7sms
from d7sms import api, progress
from d7sms.models import LATEST, Message, MessageStatus, SendoutStatus

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db(transaction=True)
S = MessageStatus


@pytest.fixture
def wired(d7_settings, live_server, sandbox):
    """Sends inline through the sandbox, whose reports reach this test's live server."""
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True}
    return sandbox


def settle(sandbox, sendout):
    assert sandbox.wait_idle(20)
    sendout.refresh_from_db()
    return sendout


def reached(sandbox, number):
    """How many messages to ``number`` the sandbox accepted."""
    return sum(m["to"].lstrip("+") == number.lstrip("+") for m in sandbox.accepted())


def page(client, sendout):
    return client.get(f"/admin/d7sms/sendout/{sendout.pk}/change/").content.decode()


def listed(client, url):
    return [m.to for m in client.get(url).context["cl"].result_list]


def links(html, section):
    """The hrefs inside the element with id ``section``."""
    start = html.index(f'id="{section}"')
    end = html.index("</table>", start)
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html[start:end])]


def assert_latest_is_no_resent_as(sendout):
    """LATEST (no resend stamped on the row) is exactly "has no resent_as"."""
    latest = set(Message.objects.filter(LATEST, sendout=sendout).values_list("pk", flat=True))
    assert latest == set(Message.objects.filter(sendout=sendout, resent_as__isnull=True).values_list("pk", flat=True))


def test_resending_one_failure_twice_leaves_sixteen_recipients_and_ten_failed(wired, sender_client):
    # 6 delivered (last digit 1..6 but not 6: sandbox ...6 expires) and 10 undelivered (...9).
    delivered = [f"+44791114{i:03d}0" for i in range(6)]
    undelivered = [f"+44791114{i:03d}9" for i in range(10)]
    sendout = settle(wired, d7sms.send_batch(delivered + undelivered, "Spring sale", dlr_level=3))
    assert sendout.status == SendoutStatus.COMPLETED_WITH_FAILURES
    first_completed_at = sendout.completed_at

    original = sendout.messages.get(to=undelivered[0])
    copy = api.resend(original)
    settle(wired, sendout)
    second_copy = api.resend(Message.objects.get(pk=copy.pk))
    sendout = settle(wired, sendout)

    assert reached(wired, undelivered[0]) == 3  # the sandbox got it three times
    assert sendout.messages.count() == 18  # the log keeps every message...
    assert progress.counts([sendout.pk])[sendout.pk] == {S.DELIVERED: 6, S.UNDELIVERED: 10}  # ...figures count recipients
    assert sendout.status == SendoutStatus.COMPLETED_WITH_FAILURES
    assert sendout.completed_at == first_completed_at  # the resends did not move it
    assert_latest_is_no_resent_as(sendout)

    html = page(sender_client, sendout)
    assert "16 recipients" in html and "18 messages" not in html
    assert "10 failed recipients" in html
    assert html.count(f">{undelivered[0]}</a>") == 1  # listed once, by its latest attempt
    failed_rows = html[html.index('id="d7-failed-recipients"'):html.index("</table>", html.index('id="d7-failed-recipients"'))]
    assert f'/admin/d7sms/message/{second_copy.pk}/change/">{undelivered[0]}' in failed_rows
    resends = html[html.index('id="d7-resends"'):]
    assert "1 recipient sent again" in resends and "2 resends and retries in all" in resends
    assert f"/admin/d7sms/message/{second_copy.pk}/change/" in resends and f"/admin/d7sms/message/{copy.pk}/change/" in resends

    progress_json = json.loads(sender_client.get(f"/admin/d7sms/sendout/{sendout.pk}/progress/").content)
    assert progress_json["total"] == 16 and progress_json["counts"] == {"delivered": 6, "undelivered": 10}

    # The message page links the chain of attempts, and says which one this is.
    message_page = sender_client.get(f"/admin/d7sms/message/{second_copy.pk}/change/").content.decode()
    for pk in (original.pk, copy.pk, second_copy.pk):
        assert f"/admin/d7sms/message/{pk}/change/" in message_page


def test_retrying_failed_twice_leaves_four_recipients(wired, sender_client):
    numbers = ["+447911150010", "+447911150020", "+447911150039", "+447911150048"]  # ...9 undelivered, ...8 refused
    sendout = settle(wired, d7sms.send_batch(numbers, "Reminder", dlr_level=3))
    first_completed_at = sendout.completed_at
    assert first_completed_at is not None
    for _ in range(2):
        assert api.retry_failed(sendout) == 2
        sendout = settle(wired, sendout)

    assert sum(reached(wired, n) for n in numbers) == 8  # 4 + 2 + 2 reached the sandbox
    assert sendout.messages.count() == 8
    assert progress.counts([sendout.pk])[sendout.pk] == {S.DELIVERED: 2, S.UNDELIVERED: 1, S.REJECTED: 1}
    assert (sendout.status, sendout.completed_at) == (SendoutStatus.COMPLETED_WITH_FAILURES, first_completed_at)
    assert_latest_is_no_resent_as(sendout)

    html = page(sender_client, sendout)
    assert "4 recipients" in html and "2 failed recipients" in html
    assert "2 recipients sent again" in html and "4 resends and retries in all" in html

    # Failures grouped by reason, each group opening exactly its recipients.
    groups = links(html, "d7-failure-groups")
    assert len(groups) == 4  # two groups, each linked from its reason and its count
    by_group = {}
    for url in groups[::2]:
        by_group[url] = listed(sender_client, url)
    assert sorted(by_group.values()) == [["+447911150039"], ["+447911150048"]]
    assert "Not delivered to the phone" in html and "Refused by the operator&#x27;s message centre (ESME_RSUBMITFAIL)" in html

    # The status counts open the recipients (latest attempts), not every attempt.
    counts_url = unescape(re.search(r'href="([^"]+status=undelivered)"', html).group(1))
    assert listed(sender_client, counts_url) == ["+447911150039"]
    # The resends link opens the four resends and retries.
    resends_url = unescape(re.search(r'href="([^"]+attempt=resend)"', html).group(1))
    assert len(listed(sender_client, resends_url)) == 4


def test_no_route_failures_are_grouped_with_their_count(wired, sender_client):
    numbers = [f"+44791116{i:03d}7" for i in range(12)] + ["+447911169990"]  # ...7: no route
    sendout = settle(wired, d7sms.send_batch(numbers, "Grouped", dlr_level=3, mode="single"))
    html = page(sender_client, sendout)
    assert re.search(r">No route</a></td><td>.*?</td><td class=\"d7-num\"><a href=\"[^\"]+\">12</a>", html)
    [reason_url, _count_url] = links(html, "d7-failure-groups")
    assert "reason=NoRoute" in reason_url and f"sendout={sendout.pk}" in reason_url
    assert sorted(listed(sender_client, reason_url)) == sorted(numbers[:12])
    assert len(wired.accepted()) == 1  # D7 took only the routable one


def test_a_retry_reopens_the_status_but_not_the_completion_time(wired, sender_client):
    sendout = settle(wired, d7sms.send_batch(["+447911170010", "+447911170029"], "Hi", dlr_level=3))
    completed_at = sendout.completed_at
    original = sendout.messages.get(to="+447911170029")
    # Stop at the moment the copy is stored: it waits to be sent, and the sendout follows it.
    copy = Message.objects.create(sendout=sendout, to=original.to, content="Hi", status=S.QUEUED, resend_of=original)
    Message.objects.filter(pk=original.pk).update(resend_token="00000000-0000-0000-0000-000000000001")
    assert progress.refresh(sendout.pk) == SendoutStatus.IN_PROGRESS
    sendout.refresh_from_db()
    assert sendout.completed_at == completed_at
    Message.objects.filter(pk=copy.pk).update(status=S.DELIVERED)
    assert progress.refresh(sendout.pk) == SendoutStatus.COMPLETED
    sendout.refresh_from_db()
    assert (sendout.status, sendout.completed_at) == (SendoutStatus.COMPLETED, completed_at)
