"""Shared fixtures: a real sandbox over loopback, D7SMS settings pointed at it."""

import os
from decimal import Decimal

import pytest

SANDBOX_USER = ("foo", "bar")


def pytest_report_header(config):
    return f"d7sms database: {os.environ.get('D7SMS_TEST_DATABASE', 'sqlite')}"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Forget what a test left in this process: the cached pause flag and the locmem outbox."""
    from d7sms import pause
    from d7sms.backends import locmem

    pause.forget()
    locmem.reset()
    yield
    pause.forget()
    locmem.reset()


@pytest.fixture
def sandbox():
    """A started sandbox with user foo:bar and a balance of 100, stopped afterwards."""
    from d7sms.sandbox import Sandbox, SandboxUser

    sb = Sandbox(
        host="127.0.0.1",
        port=0,
        users=[SandboxUser(SANDBOX_USER[0], SANDBOX_USER[1], Decimal("100"))],
        dlr_retries=3,
        dlr_retry_delay=0.1,
        dlr_delay=0.05,
    ).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def d7_settings(settings, sandbox):
    """D7SMS settings pointed at the ``sandbox`` fixture; returns the settings fixture."""
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": sandbox.url, "USERNAME": "foo", "PASSWORD": "bar"}
    return settings
