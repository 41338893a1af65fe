"""The URLs we hand D7 for calling us back, and the tokens that authenticate them.

D7 cannot sign its calls, so each URL carries an HMAC bound to the one object it reports on
(a message for a DLR, a sendout for batch callbacks): a token is useless for any other object.
The sending side builds these URLs; :mod:`d7sms.webhooks` checks them.
"""

import hashlib
import hmac
from urllib.parse import urljoin

from django.conf import settings
from django.urls import reverse

from d7sms import conf

_TOKEN_BYTES = 16
#: The object a "dlr-any" token is bound to: the whole installation.
ANY_DLR_KEY = "all"


def _secret():
    secret = conf.get("WEBHOOK_SECRET")
    if secret:
        return secret.encode() if isinstance(secret, str) else secret
    # Derived, not SECRET_KEY itself, so the token never reveals anything about it.
    return hashlib.sha256(b"d7sms.webhooks:" + settings.SECRET_KEY.encode()).digest()


def make_token(kind, key):
    """Return the token for ``kind`` ("dlr", "dlr-any", "callback", "errback") on the object ``key``."""
    msg = f"{kind}:{key}".encode()
    return hmac.new(_secret(), msg, hashlib.sha256).hexdigest()[: _TOKEN_BYTES * 2]


def check_token(kind, key, token):
    """True when ``token`` is the one made for ``kind`` on ``key`` (constant-time compare)."""
    if not token or not isinstance(token, str):
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, which a URL may hold.
    return hmac.compare_digest(make_token(kind, key).encode(), token.encode("utf-8", "surrogatepass"))


def _absolute(path):
    base = conf.get("CALLBACK_BASE_URL").rstrip("/") + "/"
    return urljoin(base, path.lstrip("/"))


def dlr_url(message_id):
    """The dlr-url for one message: it ties every report to our row."""
    token = make_token("dlr", message_id)
    return _absolute(reverse("d7sms:dlr", kwargs={"message_id": message_id, "token": token}))


def dlr_urls(message_ids):
    """:func:`dlr_url` for many messages, as ``{message_id: url}``.

    The route is resolved once and each URL assembled around its id and token: resolving it
    per message cost more than the sendbatch call carrying the URLs.
    """
    ids = list(message_ids)
    if not ids:
        return {}
    marker_id, marker_token = 987654321, "d7smsMARKERd7sms"
    template = _absolute(reverse("d7sms:dlr", kwargs={"message_id": marker_id, "token": marker_token}))
    head, sep, tail = template.partition(f"{marker_id}/{marker_token}")
    if not sep or marker_token in tail:
        return {pk: dlr_url(pk) for pk in ids}
    secret = _secret()
    urls = {
        pk: f"{head}{pk}/{hmac.new(secret, f'dlr:{pk}'.encode(), hashlib.sha256).hexdigest()[: _TOKEN_BYTES * 2]}{tail}"
        for pk in ids
    }
    if urls[ids[0]] != dlr_url(ids[0]):  # the route changed shape: take the slow, sure way
        return {pk: dlr_url(pk) for pk in ids}
    return urls


def any_dlr_url():
    """One dlr-url for every message, for deployments that configure a single one at D7.

    Reports to it are tied to messages by their D7 id alone; prefer :func:`dlr_url`.
    """
    return _absolute(reverse("d7sms:dlr-any", kwargs={"token": make_token("dlr-any", ANY_DLR_KEY)}))


def callback_url(sendout_key):
    """The ``callback_url`` (a message was submitted) of D7 batches for the sendout with this ``key``."""
    return _absolute(
        reverse("d7sms:callback", kwargs={"sendout_key": sendout_key, "token": make_token("callback", sendout_key)})
    )


def errback_url(sendout_key):
    """The ``errback_url`` (a message could not be submitted) of D7 batches for the sendout with this ``key``."""
    return _absolute(
        reverse("d7sms:errback", kwargs={"sendout_key": sendout_key, "token": make_token("errback", sendout_key)})
    )
