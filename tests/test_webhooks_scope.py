"""What a webhook call may move: only messages handed to D7, and a callback only those of its batch.

A report or callback carries a token bound to a message or a sendout, and such URLs sit in
access logs. Replaying one, or changing its parameters, must not move a message D7 was never
given (``pending``, ``queued``), nor one of another D7 batch of the same sendout.
"""

import pytest
import requests
from django.utils import timezone

from d7sms import status, webhook_urls
from d7sms.models import BatchCallback, DeliveryReport, Message, MessageStatus, SendMode
from d7sms.webhooks import callbacks, dlr
from tests.webhook_support import ACK, callback_params, callback_path, dlr_path, errback_params, level1, level2, make_sendout

S = MessageStatus


def status_of(message):
    return Message.objects.values_list("status", "d7_message_id").get(pk=message.pk)


# -- reports (DLRs) ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("waiting", [S.PENDING, S.QUEUED])
@pytest.mark.parametrize("params", [level1("d7-forged"), level2("d7-forged")], ids=["level1", "level2"])
def test_report_with_a_valid_token_cannot_move_a_message_not_handed_to_d7(client, waiting, params):
    sendout, [message] = make_sendout(["+447700900101"], status=waiting)
    response = client.post(dlr_path(message.pk), params)
    assert response.status_code == 200 and response.content == ACK  # stored: D7 must not resend it
    assert status_of(message) == (waiting, None)  # neither moved nor given the forged id
    row = DeliveryReport.objects.get()
    assert row.applied_at is None and row.message_id == message.pk
    assert row.problem == dlr.NOT_HANDED_TO_D7 % {"status": waiting}


@pytest.mark.django_db
def test_report_still_moves_a_message_whose_send_call_is_under_way(client):
    # D7 can report before the worker has recorded the answer to its call: "sending" is handed over.
    sendout, [message] = make_sendout(["+447700900102"], status=S.SENDING)
    assert client.post(dlr_path(message.pk), level1("d7-early")).content == ACK
    assert status_of(message) == (S.AT_SMSC, "d7-early")


# -- batch callbacks and errbacks -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["callback", "errback"])
def test_callback_cannot_move_a_queued_message(client, kind):
    sendout, [message] = make_sendout(["+447700900103"], status=S.QUEUED)
    params = callback_params("447700900103", "d7-forged") if kind == "callback" else errback_params("447700900103")
    assert client.get(callback_path(sendout.key, kind), params).content == ACK
    assert status_of(message) == (S.QUEUED, None)
    row = BatchCallback.objects.get()
    assert row.applied_at is None and row.problem == callbacks.NO_MESSAGE_OF_BATCH


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["callback", "errback"])
def test_callback_moves_only_messages_of_its_own_batch(client, kind):
    sendout, [message] = make_sendout(["+447700900104"], status=S.ACCEPTED)
    Message.objects.filter(pk=message.pk).update(d7_batch_id="batch-one")
    other = {"batch_id": "batch-two"}
    params = callback_params("447700900104", "d7-other", **other) if kind == "callback" else errback_params("447700900104", **other)
    assert client.get(callback_path(sendout.key, kind), params).content == ACK
    assert status_of(message) == (S.ACCEPTED, None)
    assert BatchCallback.objects.get().problem == callbacks.NO_MESSAGE_OF_BATCH
    # The same call from its own batch applies.
    own = {"batch_id": "batch-one"}
    params = callback_params("447700900104", "d7-own", **own) if kind == "callback" else errback_params("447700900104", **own)
    assert client.get(callback_path(sendout.key, kind), params).content == ACK
    # An errback's "No route found" is D7 refusing the message: rejected.
    assert status_of(message) == ((S.ACCEPTED, "d7-own") if kind == "callback" else (S.REJECTED, None))


@pytest.mark.django_db
def test_callback_before_the_sendbatch_answer_is_recorded(client):
    """The race: D7 calls back before the worker has recorded its 200 (message still ``sending``,
    no batch id yet). The callback applies and pins the message to its batch; the recorded answer
    then keeps both, and a callback naming another batch no longer applies."""
    sendout, [message] = make_sendout(["+447700900105"], status=S.SENDING)
    assert client.get(callback_path(sendout.key), callback_params("447700900105", "d7-early", "batch-b")).content == ACK
    message.refresh_from_db()
    assert (message.status, message.d7_message_id, message.d7_batch_id) == (S.ACCEPTED, "d7-early", "batch-b")
    status.record_accepted([message.pk], d7_batch_id="batch-b")
    message.refresh_from_db()
    assert (message.status, message.d7_message_id, message.d7_batch_id) == (S.ACCEPTED, "d7-early", "batch-b")
    client.get(callback_path(sendout.key, "errback"), errback_params("447700900105", batch_id="batch-x"))
    assert status_of(message) == (S.ACCEPTED, "d7-early")


@pytest.mark.django_db
def test_message_sent_by_secure_send_takes_no_batch_callback(client):
    # Accepted through /secure/send (no D7 batch): no batch callback is about it.
    sendout, [message] = make_sendout(["+447700900106"], status=S.ACCEPTED)
    Message.objects.filter(pk=message.pk).update(d7_batch_id="", submitted_at=timezone.now())
    client.get(callback_path(sendout.key, "errback"), errback_params("447700900106"))
    assert status_of(message) == (S.ACCEPTED, None)


# -- the replay of the issue, end to end --------------------------------------------------------


@pytest.fixture
def wired(d7_settings, live_server, sandbox):
    """The sandbox as D7, the live server as the site D7 calls back, sends in this process."""
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True, "DLR_LEVEL": 3}
    return sandbox


@pytest.mark.django_db(transaction=True)
def test_replayed_callback_urls_after_retry_failed_leave_the_new_copy_queued(wired, d7_settings):
    import d7sms

    delivered, undelivered = "+447911000101", "+447911000109"  # the sandbox: ...9 ends UNDELIVERED
    sendout = d7sms.send_batch([delivered, undelivered], "Hello", mode=SendMode.BATCH)
    assert wired.wait_idle(20)
    original = sendout.messages.get(to=undelivered)
    assert original.status == S.UNDELIVERED
    # A real callback URL, as an access log shows it.
    [seen] = [d for d in wired.deliveries("callback") if d["params"]["to"] == delivered]
    callback_url, batch_id = seen["url"], seen["params"]["batchId"]
    errback_url = webhook_urls.errback_url(sendout.key)

    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": False}  # the copy waits in the queue
    assert d7sms.api.retry_failed(sendout) == 1
    copy = sendout.messages.get(resend_of=original)
    assert copy.status == S.QUEUED

    forged = [
        (callback_url, {**seen["params"], "to": undelivered.lstrip("+"), "statusText": 'Success "attacker-id"'}),
        (callback_url, {**seen["params"], "to": undelivered, "batchId": "made-up", "statusText": 'Success "attacker-2"'}),
        (errback_url, {"batchId": batch_id, "to": undelivered.lstrip("+"), "status": "0", "statusText": "Error"}),
        (callback_url, seen["params"]),  # the literal replay
    ]
    for url, params in forged:
        response = requests.get(url, params=params, timeout=10)
        assert response.status_code == 200 and response.text == "ACK/Jasmin"
    copy.refresh_from_db()
    assert (copy.status, copy.d7_message_id, copy.d7_batch_id) == (S.QUEUED, None, "")
    assert not BatchCallback.objects.filter(message=copy, applied_at__isnull=False).exists()

    # The copy is then really sent, once: D7 (the sandbox) receives the number a second time.
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": True}
    assert d7sms.tasks.sweep(everything=True) == 1
    assert wired.wait_idle(20)
    assert len(wired.accepted(to=undelivered)) == 2
    copy.refresh_from_db()
    assert copy.status == S.UNDELIVERED and copy.d7_message_id not in (None, "attacker-id", "attacker-2")
