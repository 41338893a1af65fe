"""Credentials never reach error pages or reprs."""

from django.views.debug import SafeExceptionReporterFilter

from d7sms.client import D7Client


def test_debug_error_page_hides_d7_credentials(settings):
    settings.D7SMS = {
        **settings.D7SMS,
        "PASSWORD": "pw-visible?",
        "WEBHOOK_SECRET": "secret-visible?",
        "WEBHOOK_BASIC_AUTH": ("hook", "basic-visible?"),
    }
    shown = str(SafeExceptionReporterFilter().get_safe_settings()["D7SMS"])
    for secret in ("pw-visible?", "secret-visible?", "basic-visible?"):
        assert secret not in shown
    assert "D7sms" in shown  # the rest of the dict is still there to debug with


def test_client_repr_hides_the_password():
    client = D7Client("https://rest-api.d7networks.com", "user", "pw-visible?")
    try:
        assert "pw-visible?" not in repr(client)
        assert "pw-visible?" not in repr(client.__dict__)
    finally:
        client.close()


# -- Django's technical 500 page for a failing D7 call ----------------------------------------

import base64  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from decimal import Decimal  # noqa: E402

import pytest  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.views.debug import technical_500_response  # noqa: E402

PASSWORD = "pw-Visible-4f9c1e"
HOOK_PASSWORD = "hook-Visible-7d2a"


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _debug_page(view):
    """The HTML Django shows with DEBUG on for the exception ``view()`` raises."""
    request = RequestFactory().get("/balance/")
    try:
        view()
    except Exception:  # noqa: BLE001
        return technical_500_response(request, *sys.exc_info()).content.decode()
    raise AssertionError("the view did not fail")


def _assert_no_credential(html):
    token = base64.b64encode(f"acct:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, token, HOOK_PASSWORD, f"Basic {token}"):
        assert secret not in html, f"{secret!r} is on the debug page"


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    settings.D7SMS = {
        **settings.D7SMS,
        "USERNAME": "acct",
        "PASSWORD": PASSWORD,
        "CALLBACK_BASE_URL": "https://example.com",
        "WEBHOOK_BASIC_AUTH": ("hook", HOOK_PASSWORD),
        "CONNECT_TIMEOUT": 2,
        "READ_TIMEOUT": 0.5,
    }
    return settings


@pytest.fixture
def own_sandbox():
    from d7sms.sandbox import Sandbox, SandboxUser

    sb = Sandbox(port=0, users=[SandboxUser("acct", PASSWORD, Decimal("10"))]).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.mark.django_db
def test_debug_page_of_get_balance_against_a_closed_port_shows_no_credential(debug):
    import d7sms

    debug.D7SMS = {**debug.D7SMS, "BASE_URL": f"http://127.0.0.1:{_closed_port()}"}
    html = _debug_page(d7sms.get_balance)
    assert "D7 could not be reached" in html or "NotSent" in html  # the page still says what failed
    _assert_no_credential(html)


@pytest.mark.django_db
def test_the_error_report_mailed_without_debug_shows_no_credential(debug):
    """DEBUG off: what AdminEmailHandler mails (the same frames, Django's filter active)."""
    import d7sms
    from django.views.debug import ExceptionReporter

    debug.DEBUG = False
    debug.D7SMS = {**debug.D7SMS, "BASE_URL": f"http://127.0.0.1:{_closed_port()}"}
    request = RequestFactory().get("/balance/")
    try:
        d7sms.get_balance()
    except Exception:  # noqa: BLE001
        html = ExceptionReporter(request, *sys.exc_info(), is_email=True).get_traceback_html()
    _assert_no_credential(html)


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["latency", "error_500", "drop"])
def test_debug_page_of_get_balance_against_a_failing_sandbox_shows_no_credential(debug, own_sandbox, fault):
    import d7sms

    debug.D7SMS = {**debug.D7SMS, "BASE_URL": own_sandbox.url}
    own_sandbox.set_faults(**({"latency_ms": 1500} if fault == "latency" else {f"{fault}_rate": 1.0}))
    html = _debug_page(d7sms.get_balance)
    _assert_no_credential(html)


@pytest.mark.django_db
def test_debug_page_of_a_failing_send_shows_no_credential_nor_webhook_token(debug):
    from d7sms.backends import base
    from d7sms.models import Message
    from d7sms.webhook_urls import make_token

    debug.D7SMS = {**debug.D7SMS, "BASE_URL": f"http://127.0.0.1:{_closed_port()}"}
    message = Message.objects.create(to="+447700900123", content="Hi", status="sending")
    client = D7Client.from_settings()
    try:
        html = _debug_page(lambda: client.send(message.to, **base.message_params(message)))
    finally:
        client.close()
    _assert_no_credential(html)
    assert make_token("dlr", message.pk) not in html


def test_webhook_basic_auth_goes_into_the_urls_so_callback_base_url_needs_no_password(settings):
    """The README's old way (``https://user:password@host`` in CALLBACK_BASE_URL) put the password
    into a setting Django's error pages show in full: it is now a check error, and the URLs get
    their userinfo from WEBHOOK_BASIC_AUTH, which the error pages hide."""
    from d7sms.checks import check_webhooks
    from d7sms.webhook_urls import dlr_url, dlr_urls

    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": f"https://hook:{HOOK_PASSWORD}@example.com"}
    assert [m.id for m in check_webhooks()] == ["d7sms.E022"]
    assert HOOK_PASSWORD not in str(check_webhooks()[0])

    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://example.com", "WEBHOOK_BASIC_AUTH": ("ho ok", HOOK_PASSWORD + "@:/")}
    assert check_webhooks() == []
    url = dlr_url(7)
    assert url.startswith(f"https://ho%20ok:{HOOK_PASSWORD}%40%3A%2F@example.com/d7sms/dlr/7/")
    assert dlr_urls([7]) == {7: url}
    assert HOOK_PASSWORD not in repr(url) and url.split("/")[-2] not in repr(url)  # a logged repr shows neither
    shown = str(SafeExceptionReporterFilter().get_safe_settings()["D7SMS"])
    assert HOOK_PASSWORD not in shown and "https://example.com" in shown
