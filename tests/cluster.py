"""Start and stop real django-q2 clusters (``python -m django qcluster``) for end-to-end tests.

The cluster opens the test database (``D7SMS_DB_NAME``), talks to the test's sandbox
(``D7SMS_TEST_BASE_URL``) and takes D7SMS / Q_CLUSTER overrides as JSON
(``D7SMS_TEST_SETTINGS``, ``D7SMS_TEST_Q_CLUSTER``); see tests/settings.py.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings as django_settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """One qcluster process; use as a context manager or call start()/stop()."""

    def __init__(self, *, base_url=None, settings=None, q_cluster=None):
        self.env = dict(os.environ)
        self.env.update(
            DJANGO_SETTINGS_MODULE="tests.settings",
            PYTHONPATH=str(ROOT) + os.pathsep + self.env.get("PYTHONPATH", ""),
            D7SMS_DB_NAME=str(connection.settings_dict["NAME"]),
            D7SMS_TEST_Q_NAME=django_settings.Q_CLUSTER["name"],
            PYTHONUNBUFFERED="1",
        )
        if base_url:
            self.env["D7SMS_TEST_BASE_URL"] = base_url
        if settings:
            self.env["D7SMS_TEST_SETTINGS"] = json.dumps(settings)
        if q_cluster:
            self.env["D7SMS_TEST_Q_CLUSTER"] = json.dumps(q_cluster)
        self.process = None
        self.killed = False
        self.log = None

    def start(self, timeout=30):
        """Start the cluster and wait until it says it is running; returns self."""
        # Kept open for the life of the process, closed in __exit__.
        self.log = tempfile.NamedTemporaryFile(prefix="d7sms-qcluster-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "qcluster"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"qcluster exited with {self.process.returncode}:\n{self.output()}")
            if "running." in self.output():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"qcluster did not start within {timeout} s:\n{self.output()}")

    def output(self):
        """Everything the cluster logged so far."""
        return Path(self.log.name).read_text(errors="replace") if self.log else ""

    def stop(self, timeout=20):
        """Stop the cluster gracefully (SIGTERM), or kill it after ``timeout`` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the cluster stops its own workers
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self):
        """Kill the cluster and its workers at once, as a crash would; once only."""
        if self.process is None or self.killed:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the whole group: no orphaned worker
        except ProcessLookupError:
            pass
        self.process.wait(10)
        # The group is gone: its id may be given to someone else's processes, never signal it again.
        self.killed = True

    def close(self):
        """Stop the cluster and delete its log."""
        self.stop()
        if self.log:
            self.log.close()
            os.unlink(self.log.name)
            self.log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc_info):
        self.stop()
        if exc_type is not None:  # show what the cluster said: pytest prints captured output
            print(f"--- qcluster log ---\n{self.output()[-20000:]}")
        self.close()


def wait_for(predicate, timeout, interval=0.2, message="condition"):
    """Poll ``predicate`` until it is truthy; return its value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {message}.")
        time.sleep(interval)


def numbers(count, start=0):
    """``count`` distinct valid UK mobile numbers; none ends in 7 (the sandbox's "no route")."""
    out, n = [], start
    while len(out) < count:
        if n % 10 != 7:
            out.append(f"+447911{n:06d}")
        n += 1
    return out


def redis_up():
    """True when the Redis the PostgreSQL configuration's broker uses answers."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False
