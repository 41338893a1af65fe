"""The embedded database under write contention, as a fresh ``startproject`` configures it.

SQLite without the demo's OPTIONS: a 5 s busy timeout, deferred transactions (a transaction that
read first and then writes gets "database is locked" at once when another holds the write lock)
and no WAL (readers and the writer block each other). Against it: a real django-q2 cluster with
the ORM broker (its queue is in the same file), the webhook receivers served by Django's threaded
development server in another process, and the sandbox throwing batch callbacks and DLRs at it
while a 40-number sendout and 5 single sends go out. Every call D7 makes must be answered ACK
(batch callbacks are never sent again), nothing may stay queued, every message must end final.
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from d7sms.sandbox import Sandbox, SandboxUser
from tests.cluster import Cluster, numbers

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("D7SMS_TEST_DATABASE", "sqlite") != "sqlite", reason="the embedded database's own test"
    ),
]
FINAL = {"delivered", "undelivered", "expired", "rejected", "failed", "cancelled"}

SEND = """
import d7sms
from tests.cluster import numbers
d7sms.send_batch(numbers(40, start=1), "Forty at once", name="forty")
for number in numbers(5, start=500):
    d7sms.send_sms(number, "One of five")
"""


class Processes:
    """The subprocesses of one run, stopped (and their output kept) at the end."""

    def __init__(self, env):
        self.env = env
        self.started = []

    def run(self, *args, timeout=120):
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def serve(self):
        log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop())
        proc = subprocess.Popen(
            [sys.executable, "tests/webhook_server.py"], cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
        )
        self.started.append((proc, log))
        port = int(proc.stdout.readline())
        return f"http://127.0.0.1:{port}"

    def stop(self):
        logs = []
        for proc, log in self.started:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.seek(0)
            logs.append(log.read())
            log.close()
        return "\n".join(logs)


def rows(path, sql):
    # Read-only, and short: a reader holds up the writers' commits in this journal mode.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def plain_sqlite(tmp_path):
    """A migrated SQLite file with startproject's settings, and the environment that opens it."""
    path = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "D7SMS_TEST_DATABASE": "sqlite",
        "D7SMS_TEST_SQLITE_DEFAULTS": "1",
        "D7SMS_DB_NAME": str(path),
        "D7SMS_TEST_Q_NAME": django_settings.Q_CLUSTER["name"],
        "PYTHONUNBUFFERED": "1",
    }
    Processes(env).run("-m", "django", "migrate", "--no-input", "-v", "0")
    assert rows(path, "PRAGMA journal_mode") == [("delete",)]  # no WAL
    return path, env


def test_forty_plus_five_on_startproject_sqlite_lose_no_call(plain_sqlite):
    path, env = plain_sqlite
    sandbox = Sandbox(
        port=0, users=[SandboxUser("foo", "bar", Decimal("100"))],
        dlr_delay=0.05, dlr_retries=3, dlr_retry_delay=1.0, callback_timeout=30,
    ).start()
    processes = Processes(env)
    started = time.monotonic()
    try:
        callback = processes.serve()
        overrides = {"BASE_URL": sandbox.url, "CALLBACK_BASE_URL": callback}
        env["D7SMS_TEST_SETTINGS"] = json.dumps(overrides)
        cluster = Cluster(base_url=sandbox.url, settings=overrides)
        cluster.env.update(D7SMS_DB_NAME=str(path), D7SMS_TEST_SQLITE_DEFAULTS="1")
        with cluster:
            processes.run("-m", "django", "shell", "-c", SEND)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                states = dict(rows(path, "SELECT status, COUNT(*) FROM d7sms_message GROUP BY status"))
                if sum(states.values()) == 45 and set(states) <= FINAL and sandbox.wait_idle(0):
                    break
                time.sleep(0.5)
            sandbox.wait_idle(10)
        elapsed = time.monotonic() - started
        deliveries = sandbox.deliveries()
        messages = rows(path, "SELECT status, d7_message_id, \"to\" FROM d7sms_message")
    finally:
        server_log = processes.stop()
        sandbox.stop()
    refused = [d for d in deliveries if d["status_code"] != 200 or not d["acked"]]
    print(f"40 + 5 on startproject SQLite: {len(deliveries)} calls, {len(refused)} not ACKed, {elapsed:.1f} s")
    assert len(messages) == 45
    assert not refused, f"{len(refused)} calls not answered ACK: {refused[:3]}\n{server_log[-3000:]}"
    kinds = {kind: sum(1 for d in deliveries if d["kind"] == kind) for kind in ("callback", "errback", "dlr")}
    assert kinds["callback"] == 40 and kinds["errback"] == 0
    stuck = [m for m in messages if m[0] not in FINAL]
    assert not stuck, f"not final: {stuck}"
    # Every message learnt its D7 id, whoever told it (the callback, the send's answer or a DLR).
    by_number = {m["to"]: m["id"] for m in sandbox.accepted()}
    assert {to: d7_id for _s, d7_id, to in messages} == by_number
