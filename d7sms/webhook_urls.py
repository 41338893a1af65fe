"""The URLs we hand D7 for calling us back, and the tokens that authenticate them.

D7 cannot sign its calls, so each URL carries an HMAC bound to the one object it reports on
(a message for a DLR, a sendout for batch callbacks): a token is useless for any other object.
The sending side builds these URLs; :mod:`d7sms.webhooks` checks them.

The secret. Tokens are made with ``WEBHOOK_SECRET`` or, when it is unset, with a secret derived
from ``SECRET_KEY``. They are checked against that secret and every old one still accepted
(``WEBHOOK_SECRET_FALLBACKS``, or ``SECRET_KEY_FALLBACKS`` for the derived secret), as Django
does for its own signatures, so rotating a secret does not break the URLs D7 already holds. A
secret anyone can know (Django's ``django-insecure-`` development keys, the demo's key, an empty,
short or repetitive one) would let anyone forge reports, so it is refused with
``ImproperlyConfigured`` whenever messages go to a D7 that is not on this host (see
:func:`local_d7`); the system checks say the same at deploy time.

The URLs. Each is a :class:`WebhookURL`: the string D7 is given, whose ``repr`` hides its token
and password, so a URL among a traceback's variables (Django's debug page) or in a logged repr
shows neither. With ``WEBHOOK_BASIC_AUTH``, its user and password are put into every URL here
(D7 sends them back as Basic auth), so they never have to sit in ``CALLBACK_BASE_URL``, which
Django's error pages show in full.
"""

import functools
import hashlib
import hmac
import ipaddress
import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from d7sms import conf

_TOKEN_BYTES = 16
#: The object a "dlr-any" token is bound to: the whole installation.
ANY_DLR_KEY = "all"
#: Keys published with a project template or this app's demo: never a secret.
KNOWN_KEYS = frozenset({"demo-only-insecure-key-change-me"})
INSECURE_PREFIX = "django-insecure-"
#: Shortest SECRET_KEY accepted (Django's own rule, check security.W009).
MIN_SECRET_KEY_LENGTH = 50
#: Shortest WEBHOOK_SECRET accepted (characters, or bytes).
MIN_WEBHOOK_SECRET_LENGTH = 32
_MIN_DISTINCT = 5
_TOKEN_IN_URL = re.compile(r"(?<![0-9a-f])[0-9a-f]{%d}(?![0-9a-f])" % (_TOKEN_BYTES * 2))
INCLUDE_HINT = 'Add path("d7sms/", include("d7sms.urls")) to the project\'s ROOT_URLCONF.'
SECRET_HINT = (
    "Set D7SMS['WEBHOOK_SECRET'] (or SECRET_KEY) to a long random value, e.g. the output of "
    "python -c \"import secrets; print(secrets.token_urlsafe(50))\", kept out of version control."
)


class MissingRoutes(ImproperlyConfigured):
    """``d7sms.urls`` is not in the project's URLconf: no callback URL can be made."""


class WebhookURL(str):
    """A callback URL as D7 is given it; its repr hides the token and any password."""

    __slots__ = ()

    def __repr__(self):
        return repr(masked(self))


def masked(url):
    """``url`` with its token and any password replaced by ``***``."""
    text = _TOKEN_IN_URL.sub("***", str(url))
    parts = urlsplit(text)
    if parts.password:
        host = parts.netloc.rpartition("@")[2]
        text = urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return text


# -- the secrets ------------------------------------------------------------------------------


def local_d7():
    """True when no message leaves this host: a backend that sends nothing, or a BASE_URL on
    a loopback address (the sandbox). Only then may the webhook secret be a known one."""
    if conf.get("BACKEND") in conf.LOCAL_BACKENDS:
        return True
    return _loopback(conf.get("BASE_URL"))


@functools.lru_cache(maxsize=8)
def _loopback(url):
    try:
        host = urlsplit(str(url)).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def weakness(secret, *, minimum=MIN_WEBHOOK_SECRET_LENGTH):
    """Why ``secret`` (str or bytes) cannot protect the webhooks, or "" when it can.

    The words never include the secret itself.
    """
    if not secret:
        return "it is empty"
    if isinstance(secret, str):
        if secret in KNOWN_KEYS:
            return "it is the d7sms demo's published key"
        if secret.startswith(INSECURE_PREFIX):
            return f"it is a development key (it starts with {INSECURE_PREFIX!r})"
    if len(secret) < minimum:
        return f"it is shorter than {minimum} characters"
    if len(set(secret)) < _MIN_DISTINCT:
        return f"it has fewer than {_MIN_DISTINCT} different characters"
    return ""


def secret_problems():
    """``[(setting name, why it is weak)]`` for every webhook secret in use: the current one and
    its fallbacks, or SECRET_KEY and SECRET_KEY_FALLBACKS when they derive the secret."""
    explicit = conf.get("WEBHOOK_SECRET")
    if explicit:
        named = [("D7SMS['WEBHOOK_SECRET']", explicit)]
        named += [(f"D7SMS['WEBHOOK_SECRET_FALLBACKS'][{i}]", s) for i, s in enumerate(_fallbacks())]
        minimum = MIN_WEBHOOK_SECRET_LENGTH
    else:
        named = [("SECRET_KEY", settings.SECRET_KEY)]
        named += [(f"SECRET_KEY_FALLBACKS[{i}]", s) for i, s in enumerate(getattr(settings, "SECRET_KEY_FALLBACKS", ()))]
        minimum = MIN_SECRET_KEY_LENGTH
    return [(name, why) for name, value in named if (why := weakness(value, minimum=minimum))]


def _fallbacks():
    value = conf.get("WEBHOOK_SECRET_FALLBACKS") or ()
    if isinstance(value, (str, bytes)) or not all(isinstance(s, (str, bytes)) for s in value):
        raise ImproperlyConfigured("D7SMS['WEBHOOK_SECRET_FALLBACKS'] must be a list of secrets (str or bytes).")
    return tuple(value)


def _as_key(secret):
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _derived(secret_key):
    # Derived, not SECRET_KEY itself, so a token never reveals anything about it.
    return hashlib.sha256(b"d7sms.webhooks:" + _as_key(secret_key)).digest()


def _keys():
    """The HMAC keys: the one tokens are made with, then those still accepted."""
    explicit = conf.get("WEBHOOK_SECRET")
    if explicit:
        state = ("explicit", explicit, _fallbacks())
    else:
        state = ("derived", settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))
    return _keys_for(state, local_d7())


@functools.lru_cache(maxsize=8)
def _keys_for(state, local):
    how, current, fallbacks = state
    if not local:
        problems = secret_problems()
        if problems:
            name, why = problems[0]
            raise ImproperlyConfigured(
                f"d7sms refuses to sign or check webhook URLs with {name}: {why}, so anyone could forge "
                f"delivery reports. {SECRET_HINT} A weak secret is accepted only while messages stay on "
                "this host (BASE_URL on 127.0.0.1, ::1 or localhost, or the locmem or console backend)."
            )
    secrets = (current, *fallbacks)
    return tuple(_as_key(s) if how == "explicit" else _derived(s) for s in secrets)


def _sign(key, msg):
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[: _TOKEN_BYTES * 2]


def make_token(kind, key):
    """Return the token for ``kind`` ("dlr", "dlr-any", "callback", "errback") on the object ``key``.

    Always made with the current secret. Raises ``ImproperlyConfigured`` for a weak secret
    while messages go to a D7 elsewhere.
    """
    return _sign(_keys()[0], f"{kind}:{key}".encode())


def check_token(kind, key, token):
    """True when ``token`` is the one made for ``kind`` on ``key`` with the current secret or a
    fallback; every candidate is compared in constant time."""
    keys = _keys()
    if not token or not isinstance(token, str):
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, which a URL may hold.
    given = token.encode("utf-8", "surrogatepass")
    msg = f"{kind}:{key}".encode()
    matched = False
    for secret in keys:
        matched |= hmac.compare_digest(_sign(secret, msg).encode(), given)
    return matched


# -- the URLs ---------------------------------------------------------------------------------


def _base():
    """CALLBACK_BASE_URL with a trailing slash, carrying WEBHOOK_BASIC_AUTH's user and password."""
    base = conf.get("CALLBACK_BASE_URL").rstrip("/") + "/"
    basic = conf.get("WEBHOOK_BASIC_AUTH")
    if basic:
        user, password = basic
        parts = urlsplit(base)
        host = parts.netloc.rpartition("@")[2]
        userinfo = f"{quote(str(user), safe='')}:{quote(str(password), safe='')}"
        base = urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
    return base


def _absolute(path, base=None):
    return WebhookURL(urljoin(base or _base(), path.lstrip("/")))


def ready():
    """Raise ``ImproperlyConfigured`` saying why, unless callback URLs can be made: the routes of
    ``d7sms.urls`` are in the URLconf and the secret is usable. Nothing to check without
    CALLBACK_BASE_URL (no URL is handed to D7 then)."""
    if not conf.get("CALLBACK_BASE_URL"):
        return
    try:
        reverse("d7sms:dlr", kwargs={"message_id": 1, "token": "0" * (_TOKEN_BYTES * 2)})
    except NoReverseMatch:
        raise MissingRoutes(
            f"The d7sms webhook URLs are not in the URLconf, so D7 could not report back. {INCLUDE_HINT}"
        ) from None
    _keys()


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
    template = str(_absolute(reverse("d7sms:dlr", kwargs={"message_id": marker_id, "token": marker_token})))
    head, sep, tail = template.partition(f"{marker_id}/{marker_token}")
    if not sep or marker_token in tail:
        return {pk: dlr_url(pk) for pk in ids}
    secret = _keys()[0]
    urls = {pk: WebhookURL(f"{head}{pk}/{_sign(secret, f'dlr:{pk}'.encode())}{tail}") for pk in ids}
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
