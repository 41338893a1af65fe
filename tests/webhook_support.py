"""Building blocks for the webhook tests: URLs with their tokens, D7-shaped params, sendouts."""

import uuid

from django.urls import reverse

from d7sms.models import Sendout, Message, MessageStatus
from d7sms.webhook_urls import ANY_DLR_KEY, make_token

ACK = b"ACK/Jasmin"


def dlr_path(message_id, token=None):
    """Path of the DLR URL of message ``message_id`` (its own token unless given)."""
    token = token if token is not None else make_token("dlr", message_id)
    return reverse("d7sms:dlr", kwargs={"message_id": message_id, "token": token})


def any_dlr_path(token=None):
    """Path of the installation-wide DLR URL."""
    token = token if token is not None else make_token("dlr-any", ANY_DLR_KEY)
    return reverse("d7sms:dlr-any", kwargs={"token": token})


def callback_path(sendout_key, kind="callback", token=None):
    """Path of a sendout's callback or errback URL."""
    token = token if token is not None else make_token(kind, sendout_key)
    return reverse(f"d7sms:{kind}", kwargs={"sendout_key": sendout_key, "token": token})


def level1(d7_id, status="ESME_ROK"):
    """Params of a level-1 DLR as D7 sends them."""
    return {"id": d7_id, "level": "1", "message_status": status, "connector": "smpp-01"}


def level2(d7_id, status="DELIVRD", err="000", subdate="2611241030", donedate="2611241031"):
    """Params of a level-2 DLR as D7 sends them."""
    return {
        "id": d7_id,
        "level": "2",
        "message_status": status,
        "id_smsc": "1a2b3c",
        "sub": "001",
        "dlvrd": "001" if status == "DELIVRD" else "000",
        "subdate": subdate,
        "donedate": donedate,
        "err": err,
        "text": "Hello from the tests",
        "connector": "smpp-01",
    }


def callback_params(to, d7_id, batch_id="7f3e-batch"):
    """Params of a batch callback (success) for one message."""
    return {"batchId": batch_id, "to": to, "status": "1", "statusText": f'Success "{d7_id}"'}


def errback_params(to, text="No route found", batch_id="7f3e-batch"):
    """Params of a batch errback for one message (closing quote dropped, as the server does)."""
    return {"batchId": batch_id, "to": to, "status": "0", "statusText": f'HTTPAPI error: Error "{text}'}


def make_sendout(numbers, status=MessageStatus.ACCEPTED, with_ids=False):
    """A sendout with one message per number; returns (sendout, [messages])."""
    sendout = Sendout.objects.create(name="webhook test", content="Hello", status="in_progress")
    messages = [
        Message.objects.create(
            sendout=sendout,
            to=number,
            content="Hello",
            status=status,
            d7_message_id=str(uuid.uuid4()) if with_ids else None,
        )
        for number in numbers
    ]
    return sendout, messages


def make_message(status=MessageStatus.ACCEPTED, d7_id=None, to="+447700900001"):
    """One message outside any sendout."""
    return Message.objects.create(to=to, content="Hello", status=status, d7_message_id=d7_id)
