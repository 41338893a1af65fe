"""The URLs we hand D7 for calling us back, and the tokens that authenticate them.

D7 cannot sign its calls, so each URL carries an HMAC bound to the one object it reports on
(a message for a DLR, a sendout for callbacks): a token is useless for any other object.
"""

import hashlib
import hmac
from urllib.parse import urljoin

from django.conf import settings
from django.urls import reverse

from d7sms import conf

_TOKEN_BYTES = 16


def _secret():
    secret = conf.get("WEBHOOK_SECRET")
    if secret:
        return secret.encode() if isinstance(secret, str) else secret
    # Derived, not SECRET_KEY itself, so the token never reveals anything about it.
    return hashlib.sha256(b"d7sms.webhooks:" + settings.SECRET_KEY.encode()).digest()


def make_token(kind, key):
    """Return the token for ``kind`` ("dlr", "callback", "errback") on the object ``key``."""
    msg = f"{kind}:{key}".encode()
    return hmac.new(_secret(), msg, hashlib.sha256).hexdigest()[: _TOKEN_BYTES * 2]


def check_token(kind, key, token):
    """True when ``token`` is the one made for ``kind`` on ``key`` (constant-time compare)."""
    if not token or not isinstance(token, str):
        return False
    return hmac.compare_digest(make_token(kind, key), token)


def _absolute(path):
    base = conf.get("CALLBACK_BASE_URL").rstrip("/") + "/"
    return urljoin(base, path.lstrip("/"))


def dlr_url(message_id):
    """The dlr-url for one message: it ties every report to our row."""
    token = make_token("dlr", message_id)
    return _absolute(reverse("d7sms:dlr", kwargs={"message_id": message_id, "token": token}))


def callback_url(batch_key):
    """The batch callback_url (successful sendouts) for the sendout with this ``key``."""
    return _absolute(
        reverse("d7sms:batch-callback", kwargs={"batch_key": batch_key, "token": make_token("callback", batch_key)})
    )


def errback_url(batch_key):
    """The batch errback_url (failed sendouts) for the sendout with this ``key``."""
    return _absolute(
        reverse("d7sms:batch-errback", kwargs={"batch_key": batch_key, "token": make_token("errback", batch_key)})
    )
