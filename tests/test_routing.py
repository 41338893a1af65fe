"""A project that routes d7sms to a database of its own: every row, statement and transaction
of d7sms must follow the router (tests/routers.py sends d7sms to the ``sms`` database)."""

from unittest import mock

import pytest
from django.utils import timezone

import d7sms
from d7sms import api, tasks
from d7sms.models import AccountState, BatchCallback, DeliveryReport, Message, MessageStatus, Sendout
from d7sms.webhook_urls import make_token
from tests.webhook_support import ACK, callback_params, callback_path, dlr_path, errback_params, level1, level2

pytestmark = pytest.mark.django_db(databases=["default", "sms"], transaction=True)
S = MessageStatus
MODELS = (Sendout, Message, DeliveryReport, BatchCallback, AccountState)


@pytest.fixture
def routed(settings):
    settings.DATABASE_ROUTERS = ["tests.routers.D7smsElsewhere"]
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem", "SYNC": True}


def stored(model, database):
    return model.objects.using(database).count()


def test_sending_and_every_report_use_the_routed_database(routed, client):
    sendout = d7sms.send_batch(["+447911000010", "+447911000020", "+447911000040"], "Hi")
    single = d7sms.send_sms("+447911000030", "Solo")
    single = Message.objects.using("sms").get(pk=single.pk)
    assert single.status == S.ACCEPTED and single.d7_message_id  # bound by the hand-written UPDATE

    # The message's own DLR URL: the hand-written conditional UPDATE and INSERT, then the
    # sendout probe, all on "sms".
    assert client.post(dlr_path(single.pk), level1(single.d7_message_id)).content == ACK
    assert client.post(dlr_path(single.pk), level2(single.d7_message_id)).content == ACK
    first, second, third = sendout.messages.using("sms").order_by("to")
    batch = {"batch_id": first.d7_batch_id}  # a call of the D7 batch that carried them
    assert client.get(callback_path(sendout.key), callback_params(first.to[1:], "d7-first", **batch)).content == ACK
    assert client.get(callback_path(sendout.key), callback_params(second.to[1:], "d7-second", **batch)).content == ACK
    assert client.get(callback_path(sendout.key, "errback"), errback_params(third.to[1:], **batch)).content == ACK
    for message, d7_id in ((first, "d7-first"), (second, "d7-second")):
        assert client.post(dlr_path(message.pk), level2(d7_id)).content == ACK
    any_url = f"/d7sms/dlr/{make_token('dlr-any', 'all')}/"
    assert client.post(any_url, level2("d7-nobody")).content == ACK  # an orphan, stored on "sms"

    statuses = dict(Message.objects.using("sms").values_list("to", "status"))
    assert statuses == {
        first.to: S.DELIVERED, second.to: S.DELIVERED, third.to: S.REJECTED, single.to: S.DELIVERED,
    }
    assert Sendout.objects.using("sms").get(pk=sendout.pk).status == "completed_with_failures"
    assert api.retry_failed(sendout) == 1
    assert stored(Message, "sms") == 5
    for model in MODELS:
        assert stored(model, "default") == 0, model.__name__
    assert stored(DeliveryReport, "sms") == 5 and stored(BatchCallback, "sms") == 3


def test_a_failure_rolls_back_on_the_routed_database(routed):
    later = timezone.now() + timezone.timedelta(hours=1)
    with mock.patch.object(tasks, "hold", side_effect=RuntimeError("schedule store down")), pytest.raises(RuntimeError):
        d7sms.send_batch(["+447911000010", "+447911000020"], "Later", schedule_at=later)
    assert stored(Sendout, "sms") == 0 and stored(Message, "sms") == 0


def test_cancelling_and_claims_follow_the_router(routed):
    later = timezone.now() + timezone.timedelta(hours=1)
    sendout = d7sms.send_batch(["+447911000010", "+447911000020"], "Later", schedule_at=later)
    assert api.cancel_sendout(sendout) == 2
    assert set(Message.objects.using("sms").values_list("status", flat=True)) == {S.CANCELLED}
    assert Sendout.objects.using("sms").get(pk=sendout.pk).status == "cancelled"
    for model in MODELS:
        assert stored(model, "default") == 0, model.__name__
