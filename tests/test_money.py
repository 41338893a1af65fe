"""Money: the cost of a sendout before (preview) and after (sendout page) in CURRENCY, the balance
with its currency, read again on a worker after each sendout completes; the demo prices parts
as its sandbox charges them."""

import importlib
from decimal import Decimal

import pytest

import d7sms
from d7sms import signals, tasks
from d7sms.models import AccountState, Sendout
from d7sms.sandbox.gateway import DEFAULT_PRICE_PER_PART
from tests.cluster import Cluster, wait_for

pytest_plugins = ["tests.admin_support"]
PRICE = Decimal("0.01")


@pytest.fixture
def wired(d7_settings, live_server, sandbox):
    """Inline sends through the sandbox (which charges 0.01 a part), priced alike, in EUR."""
    d7_settings.D7SMS = {
        **d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True,
        "PRICE_PER_PART": PRICE, "CURRENCY": "EUR",
    }
    return sandbox


@pytest.mark.django_db
def test_the_preview_shows_the_cost_and_the_balance_in_the_currency(sender_client, locmem, settings):
    from d7sms.client import Balance
    from tests.test_admin_compose import URL, form

    settings.D7SMS = {**settings.D7SMS, "PRICE_PER_PART": "0.05", "CURRENCY": "EUR"}
    locmem.balance = Balance(Decimal("12.5"), None)
    html = sender_client.post(URL, form()).content.decode()
    assert 'id="d7-estimated-cost">0.1 EUR<' in html  # two recipients, one part each
    assert "12.50 EUR" in html


@pytest.mark.django_db
def test_the_balance_panel_shows_the_currency(viewer_client, settings):
    settings.D7SMS = {**settings.D7SMS, "CURRENCY": "EUR"}
    from django.utils import timezone

    AccountState.objects.update_or_create(pk=1, defaults={"balance": Decimal("42.10"), "balance_read_at": timezone.now()})
    html = viewer_client.get("/admin/d7sms/sendout/").content.decode()
    assert "42.10 EUR" in html or "42.1 EUR" in html


@pytest.mark.django_db(transaction=True)
def test_the_sendout_page_shows_what_d7_charged_and_the_balance_follows(wired, sender_client):
    before = wired.balance("foo")
    long_text = "x" * 200  # two parts
    numbers = ["+447911180010", "+447911180029", "+447911180037"]  # delivered, undelivered, no route
    sendout = d7sms.send_batch(numbers, long_text, dlr_level=3, mode="single")
    assert wired.wait_idle(20)
    sendout = Sendout.objects.get(pk=sendout.pk)
    charged = before - wired.balance("foo")
    assert charged == Decimal("0.04")  # two messages of two parts; no route is not charged
    html = sender_client.get(f"/admin/d7sms/sendout/{sendout.pk}/change/").content.decode()
    cost = html[html.index('id="d7-sendout-cost"'):]
    assert "4 parts charged by D7" in cost and "<strong>0.04 EUR</strong>" in cost

    # The stored balance was read again once the sendout completed: it shows what was spent.
    assert sendout.status == "completed_with_failures"
    assert AccountState.get().balance == wired.balance("foo") == before - charged

    # A resend costs too: the page counts every attempt.
    d7sms.api.resend(sendout.messages.get(to="+447911180029"))
    assert wired.wait_idle(20)
    html = sender_client.get(f"/admin/d7sms/sendout/{sendout.pk}/change/").content.decode()
    assert "<strong>0.06 EUR</strong>" in html and before - wired.balance("foo") == Decimal("0.06")


@pytest.mark.django_db
def test_completion_puts_the_balance_read_on_the_queue_without_calling_d7(d7_settings, sandbox):
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": False}
    broker = tasks._broker()
    broker.purge_queue()
    sendout = Sendout.objects.create(name="done")
    signals.sendout_completed.send(sender=Sendout, sendout=sendout)
    assert sandbox.stats().get("requests", 0) == 0  # nothing was read in the caller
    assert broker.queue_size() == 1
    broker.purge_queue()
    # What the worker runs: the reading is stored.
    assert tasks.balance_task() == Decimal("100") and AccountState.get().balance == Decimal("100")


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_a_worker_reads_the_balance_after_a_sendout_completes(d7_settings, sandbox):
    callback = "https://127.0.0.1:9"  # nothing listens: no reports, so dlr_level 0 completes at accepted
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": callback}
    tasks._broker().purge_queue()
    sendout = d7sms.send_batch(["+447911190010", "+447911190020"], "Hi", dlr_level=0)
    with Cluster(base_url=sandbox.url, settings={"CALLBACK_BASE_URL": callback}):
        wait_for(lambda: Sendout.objects.get(pk=sendout.pk).status == "completed", 30, message="the sendout")
        wait_for(lambda: AccountState.get().balance == Decimal("99.98"), 30, message="the balance read")
    assert sandbox.balance("foo") == Decimal("99.98")


def test_the_demo_prices_parts_as_its_sandbox_charges(monkeypatch, tmp_path):
    monkeypatch.setenv("D7SMS_DATA_DIR", str(tmp_path))  # the settings make their data directory
    for name in ("D7SMS_BASE_URL", "D7SMS_PRICE_PER_PART", "D7SMS_CURRENCY"):
        monkeypatch.delenv(name, raising=False)
    from demo_project import run, settings as demo

    demo = importlib.reload(demo)
    assert demo.D7SMS["PRICE_PER_PART"] == DEFAULT_PRICE_PER_PART and demo.D7SMS["CURRENCY"] == "EUR"
    assert run.sandbox_price({}) == []  # the sandbox runs at its default price
    monkeypatch.setenv("D7SMS_PRICE_PER_PART", "0.035")
    demo = importlib.reload(demo)
    assert demo.D7SMS["PRICE_PER_PART"] == Decimal("0.035")
    assert run.sandbox_price({"D7SMS_PRICE_PER_PART": "0.035"}) == ["--price-per-part", "0.035"]
    monkeypatch.setenv("D7SMS_BASE_URL", "https://rest-api.d7networks.com")
    monkeypatch.delenv("D7SMS_PRICE_PER_PART")
    assert importlib.reload(demo).D7SMS["PRICE_PER_PART"] is None  # the real service's price is not known
