"""A busy database loses nothing: receivers and workers wait and try again (d7sms.busy).

The write lock is really held, by a second connection to the same SQLite file, while the test's
own connection has a short busy timeout; the end-to-end run against startproject's settings is
tests/test_sqlite_contention.py.
"""

import sqlite3
import threading
import time

import pytest
from django.db import OperationalError, connection

from d7sms import busy, sending
from d7sms.backends import base
from d7sms.models import BatchCallback, DeliveryReport, Message, MessageStatus
from d7sms.webhooks import callbacks, dlr, views
from tests.webhook_support import ACK, callback_params, callback_path, dlr_path, level2, make_message, make_sendout

S = MessageStatus
SQLITE = pytest.mark.skipif(connection.vendor != "sqlite", reason="holds SQLite's write lock")


class LockHolder:
    """Holds the database's write lock from another connection for ``seconds``."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.held = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        other = sqlite3.connect(connection.settings_dict["NAME"], timeout=30, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            self.held.set()
            time.sleep(self.seconds)
            other.execute("COMMIT")
        finally:
            other.close()

    def start(self):
        self.thread.start()
        assert self.held.wait(5)
        return self

    def join(self):
        self.thread.join(10)


@pytest.fixture
def impatient_connection():
    """This process's connection gives up on a held lock after 50 ms (startproject: 5 s)."""
    connection.ensure_connection()
    connection.connection.execute("PRAGMA busy_timeout = 50")
    yield
    connection.close()  # the next test opens one with the configured timeout


# -- the receivers -------------------------------------------------------------------------------


@SQLITE
@pytest.mark.django_db(transaction=True)
def test_a_report_waits_out_a_held_write_lock(client, impatient_connection):
    message = make_message(d7_id="d7-busy")
    holder = LockHolder(0.6).start()
    response = client.post(dlr_path(message.pk), level2("d7-busy"))
    holder.join()
    assert response.status_code == 200 and response.content == ACK
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED


@SQLITE
@pytest.mark.django_db(transaction=True)
def test_a_callback_waits_out_a_held_write_lock(client, impatient_connection):
    sendout, [message] = make_sendout(["+447700900701"], status=S.SENDING)
    holder = LockHolder(0.6).start()
    response = client.get(callback_path(sendout.key), callback_params("447700900701", "d7-cb-busy"))
    holder.join()
    assert response.content == ACK
    assert Message.objects.values_list("status", "d7_message_id").get(pk=message.pk) == (S.ACCEPTED, "d7-cb-busy")


@pytest.mark.django_db(transaction=True)
def test_a_callback_that_stays_unapplied_is_stored_acked_and_applied_later(client, monkeypatch):
    """D7 never resends a batch callback: never a 503 for one, even when applying keeps failing."""
    monkeypatch.setattr(views.BatchCallbackReceiver, "patience", 0.2)
    sendout, [message] = make_sendout(["+447700900702"], status=S.SENDING)
    real = callbacks._apply

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(callbacks, "_apply", locked)
    response = client.get(callback_path(sendout.key), callback_params("447700900702", "d7-later"))
    assert response.status_code == 200 and response.content == ACK
    row = BatchCallback.objects.get()
    assert row.problem == callbacks.NOT_APPLIED_YET and row.applied_at is None
    assert Message.objects.get(pk=message.pk).status == S.SENDING

    monkeypatch.setattr(callbacks, "_apply", real)
    from d7sms import housekeeping

    assert housekeeping.run()["callbacks_applied"] == 1
    row.refresh_from_db()
    assert row.problem == "" and row.applied_at and row.message_id == message.pk
    assert Message.objects.values_list("status", "d7_message_id").get(pk=message.pk) == (S.ACCEPTED, "d7-later")


@pytest.mark.django_db(transaction=True)
def test_a_report_gets_503_only_after_its_patience(client, monkeypatch):
    """A DLR D7 will resend: retried inside the request, then 503 as the last resort."""
    monkeypatch.setattr(views.DeliveryReportView, "patience", 0.3)
    message = make_message(d7_id="d7-503-late")
    tries = []
    real = dlr.receive

    def locked_twice(*args, **kwargs):
        tries.append(1)
        if len(tries) <= 2:
            raise OperationalError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(dlr, "receive", locked_twice)
    assert client.post(dlr_path(message.pk), level2("d7-503-late")).content == ACK  # third try
    assert len(tries) == 3 and Message.objects.get(pk=message.pk).status == S.DELIVERED

    other = make_message(d7_id="d7-503-never", to="+447700900703")
    monkeypatch.setattr(dlr, "receive", lambda *a, **k: (_ for _ in ()).throw(OperationalError("database is locked")))
    started = time.monotonic()
    response = client.post(dlr_path(other.pk), level2("d7-503-never"))
    assert response.status_code == 503 and time.monotonic() - started >= 0.2
    assert DeliveryReport.objects.filter(message=other, problem__startswith="not applied").exists()


def test_only_a_busy_database_is_retried():
    assert busy.is_busy(OperationalError("database is locked"))
    assert not busy.is_busy(OperationalError("no such table: d7sms_message"))
    assert not busy.is_busy(ValueError("database is locked"))
    calls = []

    def broken():
        calls.append(1)
        raise OperationalError("no such table: x")

    with pytest.raises(OperationalError):
        busy.retry(broken, seconds=5)
    assert calls == [1]


# -- the workers ---------------------------------------------------------------------------------


@SQLITE
@pytest.mark.django_db(transaction=True)
def test_a_worker_records_its_outcome_through_a_held_write_lock(d7_settings, sandbox, monkeypatch, impatient_connection):
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": False}
    message = Message.objects.create(to="+447911123450", content="Hi", status=S.QUEUED)
    holders = []
    real_params = base.message_params

    def lock_after_building(msg):
        # The call is under way; another process takes the write lock until after it returns.
        holders.append(LockHolder(0.6).start())
        return real_params(msg)

    monkeypatch.setattr(base, "message_params", lock_after_building)
    assert sending.send_single([message.pk]) == []
    holders[0].join()
    message.refresh_from_db()
    assert message.status == S.ACCEPTED and message.d7_message_id  # not left "sending"
    assert len(sandbox.accepted()) == 1


# -- ids without callbacks -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_message_learns_its_d7_id_when_every_callback_is_lost(d7_settings, live_server, sandbox, monkeypatch):
    """Batch callbacks are fire-and-forget: each message's own dlr-url binds its id instead."""
    import d7sms

    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True}
    lost = "http://127.0.0.1:9/lost"  # nothing listens: D7's calls there vanish
    monkeypatch.setattr(base, "batch_config", lambda sendout: {"callback_url": lost, "errback_url": lost})
    numbers = [f"+44791113{i:04d}" for i in range(1, 12) if i % 10 != 7]  # ...7 has no route: an errback only
    sendout = d7sms.send_batch(numbers, "Ids from reports", dlr_level=3)
    assert sandbox.wait_idle(20)
    assert all(d["error"] for d in sandbox.deliveries("callback"))  # every callback was lost
    truth = {m["to"]: m["id"] for m in sandbox.accepted()}
    got = dict(sendout.messages.values_list("to", "d7_message_id"))
    assert got == truth
    assert not sendout.messages.exclude(status__in=[S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED]).exists()
