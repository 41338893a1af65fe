"""A pause belongs to the credentials D7 refused: other credentials keep sending."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from d7sms import api, balance, pause, sending
from d7sms.models import AccountState, Message, MessageStatus
from d7sms.sandbox import Sandbox, SandboxUser

S = MessageStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def two_accounts(settings):
    """A sandbox with a paying account and one without credit, D7SMS pointed at it."""
    sb = Sandbox(port=0, users=[SandboxUser("rich", "rich-pw", Decimal("50")), SandboxUser("poor", "poor-pw", Decimal("0"))])
    sb.start()
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": sb.url, "USERNAME": "rich", "PASSWORD": "rich-pw", "SYNC": False}
    try:
        yield sb
    finally:
        sb.stop()


def use(settings, username, password):
    settings.D7SMS = {**settings.D7SMS, "USERNAME": username, "PASSWORD": password}


def test_d7sms_balance_with_a_wrong_password_does_not_stop_the_workers(settings, two_accounts):
    use(settings, "rich", "a-wrong-password")
    with pytest.raises(CommandError) as raised:
        call_command("d7sms_balance")
    assert raised.value.returncode == 1
    assert pause.is_paused(fresh=True)  # the refused credentials are paused...

    use(settings, "rich", "rich-pw")  # ...the workers hold the right ones
    assert not pause.is_paused(fresh=True)
    message = api.send_sms("+447911123450", "Still going")
    assert sending.send_single([message.pk]) == []
    message.refresh_from_db()
    assert message.status == S.ACCEPTED and len(two_accounts.accepted()) == 1


def test_the_stored_fingerprint_says_nothing_about_the_password(settings, two_accounts):
    use(settings, "rich", "a-wrong-password")
    with pytest.raises(CommandError):
        call_command("d7sms_balance")
    stored = AccountState.get().paused_account
    assert len(stored) == 64 and "a-wrong-password" not in stored and stored == pause.account()
    use(settings, "rich", "another-wrong-one")
    assert pause.account() != stored


def test_a_pause_for_want_of_credit_is_lifted_only_by_that_account(settings, two_accounts):
    use(settings, "poor", "poor-pw")
    pause.pause("D7 could not charge the account: Cannot charge submit_sm", no_credit=True)
    use(settings, "rich", "rich-pw")
    assert not pause.is_paused(fresh=True)
    assert balance.read(force=True)[1] is False  # a reading of another account lifts nothing
    use(settings, "poor", "poor-pw")
    assert pause.is_paused(fresh=True)
    assert balance.read(force=True)[1] is False  # still nothing to spend
    assert pause.is_paused(fresh=True)
    two_accounts.accounts.charge("poor", Decimal("-5"))  # topped up
    assert balance.read(force=True)[1] is True
    assert not pause.is_paused(fresh=True)


def test_a_refused_password_does_not_lift_a_want_of_credit(settings, two_accounts):
    use(settings, "poor", "poor-pw")
    pause.pause("no credit", no_credit=True)
    use(settings, "poor", "a-wrong-password")
    with pytest.raises(CommandError):
        call_command("d7sms_balance")
    use(settings, "poor", "poor-pw")
    assert pause.is_paused(fresh=True)  # the sendbatch of the poor account must still wait


def test_a_fixed_password_clears_the_pause_of_the_wrong_one(settings, two_accounts):
    use(settings, "rich", "a-wrong-password")
    message = api.send_sms("+447911123450", "Waits")
    sending.send_single([message.pk])
    assert Message.objects.get(pk=message.pk).status == S.QUEUED and AccountState.get().paused
    use(settings, "rich", "rich-pw")
    reading, resumed = balance.read()
    assert resumed and not AccountState.get().paused
