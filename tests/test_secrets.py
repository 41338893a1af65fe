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
