"""The real backend: the D7 REST API through :class:`~d7sms.client.D7Client`."""

from django.core.exceptions import ImproperlyConfigured

from d7sms import conf
from d7sms.backends import base
from d7sms.client import D7Client


class D7Backend(base.BaseBackend):
    """Sends through D7 with one keep-alive HTTP session for the life of the process.

    Without credentials it cannot be created: :func:`d7sms.send_sms` and its siblings raise
    ``ImproperlyConfigured`` before storing anything, and a worker leaves its messages queued.
    """

    def __init__(self, client=None):
        if client is None and not (conf.get("USERNAME") and conf.get("PASSWORD")):
            raise ImproperlyConfigured(
                "D7SMS['USERNAME'] and D7SMS['PASSWORD'] are required to send through D7 (d7sms.E001): "
                "set them, or use BACKEND 'locmem' or 'console' in development and tests."
            )
        self.client = client or D7Client.from_settings()

    def send_message(self, message):
        return self.client.send(message.to, **base.message_params(message)).message_id

    def send_chunk(self, sendout, messages, *, schedule_at=None):
        globals_, items = base.batch_payload(messages)
        return self.client.sendbatch(
            items,
            globals=globals_,
            schedule_at=schedule_at,
            **base.batch_config(sendout),
        )

    def balance(self):
        return self.client.balance()

    def close(self):
        self.client.close()
