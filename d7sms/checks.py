"""System checks for the D7SMS settings (ids d7sms.E0xx for errors, d7sms.W0xx for warnings).

Checks that need production values (the credentials, an https callback URL) are deploy checks
(``manage.py check --deploy``), so ``migrate``, ``showmigrations`` and ``manage.py test`` run
without them, as django-anymail's do; sending without credentials fails at the call instead.
How the settings fit the rest of the project (URLs, hosts, broker, cache, database) is checked
in :mod:`d7sms.project_checks`. The README's Troubleshooting section lists every id.
"""

import difflib
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from d7sms import conf, quiet_hours, webhook_urls
from d7sms.conf import shown
from d7sms.recipients import SENDER_RULE, is_valid_sender

BACKENDS = {"d7", "locmem", "console"}
# Paths the client appends to BASE_URL itself; a BASE_URL ending in one doubles it.
ENDPOINTS = ("/secure/sendbatch", "/secure/send", "/secure/balance", "/secure", "/ping")
# Region codes people write for the United Kingdom that ISO 3166 spells GB.
REGION_MISTAKES = {"UK": "GB", "EN": "GB", "ENG": "GB"}


def _url_problem(value):
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "it needs an http:// or https:// scheme and a host name"
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return "its port is not a number"
    return None


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    user = getattr(settings, "D7SMS", None)
    if user is not None and not isinstance(user, dict):
        return [Error("settings.D7SMS must be a dict.", id="d7sms.E000")]
    messages = []
    unknown = sorted(set(user or {}) - set(conf.DEFAULTS), key=str)
    if unknown:
        guesses = [
            f"{name!r} -> {match[0]!r}"
            for name in unknown
            if (match := difflib.get_close_matches(str(name).upper(), conf.DEFAULTS, n=1))
        ]
        messages.append(
            Warning(
                f"Unknown D7SMS setting(s): {', '.join(map(str, unknown))}.",
                hint=(f"Did you mean {', '.join(guesses)}? " if guesses else "Check the spelling; ")
                + "every setting is listed in the README's Settings section and in d7sms/conf.py.",
                id="d7sms.W001",
            )
        )
    s = conf.all_settings()

    backend = s["BACKEND"]
    if backend not in BACKENDS and "." not in str(backend):
        messages.append(
            Error(f"D7SMS['BACKEND'] is {backend!r}.", hint="Use 'd7', 'locmem', 'console' or a dotted path.", id="d7sms.E005")
        )
    messages += _base_url_problems(s["BASE_URL"])

    callback = s["CALLBACK_BASE_URL"]
    if not callback:
        messages.append(
            Warning(
                "D7SMS['CALLBACK_BASE_URL'] is empty: D7 cannot report deliveries to this site.",
                hint="Set it to this site's public URL, e.g. 'https://example.com'.",
                id="d7sms.W002",
            )
        )
    else:
        problem = _url_problem(callback)
        if problem:
            messages.append(
                Error(
                    f"D7SMS['CALLBACK_BASE_URL'] {shown(callback)} is not a usable URL: {problem}.",
                    hint="Set it to this site's public URL, e.g. 'https://www.example.com'.",
                    id="d7sms.E003",
                )
            )

    if s["DLR_LEVEL"] not in (0, 1, 2, 3):
        messages.append(Error(f"D7SMS['DLR_LEVEL'] must be 0, 1, 2 or 3, not {s['DLR_LEVEL']!r}.", id="d7sms.E006"))
    if str(s["DLR_METHOD"]).upper() not in ("GET", "POST"):
        messages.append(Error(f"D7SMS['DLR_METHOD'] must be 'GET' or 'POST', not {s['DLR_METHOD']!r}.", id="d7sms.E007"))
    if s["DEFAULT_SENDER"] and not is_valid_sender(s["DEFAULT_SENDER"]):
        messages.append(
            Error(
                f"D7SMS['DEFAULT_SENDER'] {s['DEFAULT_SENDER']!r} is not a valid sender.",
                hint=f"Use {SENDER_RULE}.",
                id="d7sms.E008",
            )
        )
    region = s["DEFAULT_REGION"]
    if region:
        import phonenumbers

        if region not in phonenumbers.SUPPORTED_REGIONS:
            messages.append(
                Error(
                    f"D7SMS['DEFAULT_REGION'] {region!r} is not a known region code.",
                    hint=_region_hint(region),
                    id="d7sms.E009",
                )
            )
    for name in ("BATCH_CHUNK_SIZE", "SEND_CHUNK_SIZE", "SEND_WINDOW", "MAX_RETRIES", "SENDING_TIMEOUT"):
        value = s[name]
        if not isinstance(value, int) or value < (0 if name == "MAX_RETRIES" else 1):
            messages.append(Error(f"D7SMS[{name!r}] must be a positive whole number, not {value!r}.", id="d7sms.E010"))
    throughput = s["THROUGHPUT"]
    if throughput is not None and (not isinstance(throughput, (int, float)) or throughput <= 0):
        messages.append(Error(f"D7SMS['THROUGHPUT'] must be a positive number or None, not {throughput!r}.", id="d7sms.E011"))
    try:
        quiet_hours.parse(s["QUIET_HOURS"])
    except quiet_hours.WindowError as exc:
        messages.append(Error(f"D7SMS['QUIET_HOURS'] cannot be used: {exc}", id="d7sms.E050"))
    q_cluster = getattr(settings, "Q_CLUSTER", None) or {}
    timeout = q_cluster.get("timeout")
    # A task stops starting calls after TASK_SECONDS; the last call may then take its timeouts.
    longest = s["TASK_SECONDS"] + s["CONNECT_TIMEOUT"] + s["READ_TIMEOUT"]
    if isinstance(timeout, (int, float)) and longest >= timeout:
        messages.append(
            Warning(
                f"D7SMS['TASK_SECONDS'] plus CONNECT_TIMEOUT and READ_TIMEOUT ({longest:g} s) reaches "
                f"Q_CLUSTER['timeout'] ({timeout}): django-q2 may kill a task in the middle of a call to D7, "
                "leaving its messages 'unknown'.",
                hint="Raise Q_CLUSTER['timeout'] or lower TASK_SECONDS.",
                id="d7sms.W003",
            )
        )
    retry = q_cluster.get("retry")
    if isinstance(timeout, (int, float)) and isinstance(retry, (int, float)) and retry <= timeout:
        messages.append(
            Warning(
                f"Q_CLUSTER['retry'] ({retry}) is not above Q_CLUSTER['timeout'] ({timeout}).",
                hint="django-q2 then redelivers tasks that are still running; keep retry above timeout.",
                id="d7sms.W004",
            )
        )
    return messages


# -- the webhooks' secret and URLs, and the send rate (ids d7sms.E020-E029, W020-W029) --------


@register(Tags.security)
def check_webhooks(app_configs=None, **kwargs):
    """What a forged or lost webhook call, or a send that cannot go out, would come from."""
    user = getattr(settings, "D7SMS", None)
    if user is not None and not isinstance(user, dict):
        return []  # d7sms.E000 says so
    s = conf.all_settings()
    messages = []
    try:
        problems = webhook_urls.secret_problems()
    except ImproperlyConfigured as exc:
        problems = []
        messages.append(Error(str(exc), id="d7sms.E024"))
    secret = s["WEBHOOK_SECRET"]
    if secret is not None and not isinstance(secret, (str, bytes)):
        messages.append(Error("D7SMS['WEBHOOK_SECRET'] must be a str, bytes or None.", id="d7sms.E024"))
        problems = []
    if problems and not webhook_urls.local_d7() and _configured_to_send(s):
        messages.extend(_weak_secret_errors(problems, secret))
    callback = s["CALLBACK_BASE_URL"]
    if callback and not _url_problem(callback) and urlsplit(callback).password:
        messages.append(
            Error(
                "D7SMS['CALLBACK_BASE_URL'] holds a password: Django's error pages show that setting in full.",
                hint="Move the user and password to D7SMS['WEBHOOK_BASIC_AUTH'] = (user, password); d7sms puts "
                "them into every callback URL it gives D7.",
                id="d7sms.E022",
            )
        )
    return messages


def _configured_to_send(s):
    """True once the project holds D7 credentials: until then (a fresh project, a migration-only
    release step) a weak secret is a matter for ``check --deploy``, as Django's own W009 is."""
    return bool(s["USERNAME"] and s["PASSWORD"])


def _weak_secret_errors(problems, secret):
    errors = []
    for name, why in problems:
        text = (
            f"{name} cannot protect the webhook URLs: {why}. Anyone could forge delivery reports, "
            "so d7sms refuses to send or receive with it while BASE_URL is not on this host."
        )
        if secret:
            errors.append(Error(text, hint=webhook_urls.SECRET_HINT, id="d7sms.E021"))
        else:
            errors.append(Error(text, hint=webhook_urls.SECRET_HINT, id="d7sms.E020"))
    return errors


@register(Tags.security, deploy=True)
def check_webhooks_deploy(app_configs=None, **kwargs):
    """``check --deploy``: a weak webhook secret is fine against the local sandbox only."""
    user = getattr(settings, "D7SMS", None)
    if user is not None and not isinstance(user, dict):
        return []  # E000 says it
    try:
        problems = webhook_urls.secret_problems()
    except ImproperlyConfigured:
        return []  # E024 says it
    if not webhook_urls.local_d7():
        s = conf.all_settings()
        # With credentials, the plain check already said it.
        return [] if _configured_to_send(s) else _weak_secret_errors(problems, s["WEBHOOK_SECRET"])
    return [
        Warning(
            f"{name} cannot protect the webhook URLs: {why}. That is accepted only while BASE_URL is on "
            "this host; d7sms refuses it once BASE_URL points at D7.",
            hint=webhook_urls.SECRET_HINT,
            id="d7sms.W020",
        )
        for name, why in problems
    ]


def _base_url_problems(value):
    problem = _url_problem(value)
    if problem:
        return [
            Error(
                f"D7SMS['BASE_URL'] {shown(value)} is not a usable URL: {problem}.",
                hint="Leave it out for D7 ('https://rest-api.d7networks.com'), or give your Jasmin's "
                "REST API, e.g. 'http://jasmin.example.com:8080'.",
                id="d7sms.E002",
            )
        ]
    path = urlsplit(value).path.rstrip("/")
    endpoint = next((e for e in ENDPOINTS if path.lower().endswith(e)), None)
    if endpoint is None:
        return []
    base = urlunsplit(urlsplit(value)._replace(path=path[: -len(endpoint)], query="", fragment=""))
    return [
        Error(
            f"D7SMS['BASE_URL'] {shown(value)} ends in the endpoint {endpoint!r}: the client adds each "
            f"endpoint itself, so a send would go to {shown(value.rstrip('/') + '/secure/send')}.",
            hint=f"Set BASE_URL to the API's root: {shown(base)}.",
            id="d7sms.E031",
        )
    ]


def _region_hint(region):
    import phonenumbers

    text = str(region).strip()
    guess = REGION_MISTAKES.get(text.upper())
    if guess is None and text.upper() in phonenumbers.SUPPORTED_REGIONS:
        guess = text.upper()
    if guess is None and text.lstrip("+").isdigit():
        found = phonenumbers.region_code_for_country_code(int(text.lstrip("+")))
        guess = None if found == phonenumbers.UNKNOWN_REGION else found
    rule = "Use the ISO 3166 two-letter code of the country whose national numbers you send to"
    return f"Did you mean {guess!r}? {rule}." if guess else f"{rule}, e.g. 'GB' or 'DE'."


@register(Tags.security, deploy=True)
def check_production_settings(app_configs=None, **kwargs):
    """What a site that sends through D7 needs in production: credentials and an https callback."""
    user = getattr(settings, "D7SMS", None)
    if user is not None and not isinstance(user, dict):
        return []  # E000, from check_settings
    s = conf.all_settings()
    messages = []
    if s["BACKEND"] == "d7" and not (s["USERNAME"] and s["PASSWORD"]):
        messages.append(
            Error(
                "D7SMS['USERNAME'] and D7SMS['PASSWORD'] are required to send through D7.",
                hint="Set them from the environment, or use BACKEND 'locmem' or 'console' in development.",
                id="d7sms.E001",
            )
        )
    callback = s["CALLBACK_BASE_URL"]
    if callback and not _url_problem(callback) and urlsplit(callback).scheme != "https":
        messages.append(
            Error(
                f"D7SMS['CALLBACK_BASE_URL'] {shown(callback)} must use https in production.",
                hint="Webhook URLs carry their authentication token; plain http exposes it. "
                f"Use {shown(urlunsplit(urlsplit(callback)._replace(scheme='https')))}.",
                id="d7sms.E004",
            )
        )
    return messages
