"""What the sending benchmarks share: a sandbox in its own process, a fresh database, Django
configured from tests/settings.py, and real django-q2 clusters (tests/cluster.py).

Call :func:`prepare` before importing anything from Django.
"""

import atexit
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_USER = ("bench", "bench")
CALLBACK = "https://127.0.0.1:9"  # nothing listens: the sandbox's reports fail at once


class SandboxProcess:
    """``python -m d7sms.sandbox`` on a free port, so it never shares an interpreter lock with
    the code measured."""

    def __init__(self, options=("--dlr-retries", "0")):
        user = f"{BENCH_USER[0]}:{BENCH_USER[1]}:ND"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "d7sms.sandbox", "--port", "0", "--user", user, *options],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        line = self.process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"The sandbox did not start: {line}")
        self.url = match.group(1)
        atexit.register(self.stop)  # never leave it running, whatever ends the benchmark
        # Keep reading its output so that a full pipe never blocks it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def reset(self):
        """Forget what it received (frees its memory between runs)."""
        request = urllib.request.Request(self.url + "/_sandbox/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=30).read()

    def stats(self):
        return self._get("/_sandbox/stats")

    def messages(self):
        """Every message it accepted, oldest first (dicts, see ``Sandbox.accepted()``)."""
        return self._get("/_sandbox/messages")

    def wait_idle(self, timeout=30):
        """Wait until no sendbatch call, callback or DLR is pending there; True if it got idle."""
        return self._get(f"/_sandbox/idle?timeout={timeout}", timeout + 30)["idle"]

    def _get(self, path, timeout=60):
        return json.loads(urllib.request.urlopen(self.url + path, timeout=timeout).read())

    def stop(self):
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def prepare(database, sandbox_url, d7sms_settings, workers, name="d7sms_bench"):
    """Point tests/settings.py (here and in clusters) at a fresh database ``name`` (see
    :func:`fresh_database`) and the sandbox; return the database's name."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["D7SMS_TEST_DATABASE"] = database
    os.environ["D7SMS_TEST_BASE_URL"] = sandbox_url
    os.environ["D7SMS_TEST_SETTINGS"] = json.dumps(d7sms_settings)
    # Timeouts well above a task's TASK_SECONDS; ORM broker on SQLite, Redis with PostgreSQL.
    os.environ["D7SMS_TEST_Q_CLUSTER"] = json.dumps({"workers": workers, "timeout": 120, "retry": 180})
    name = fresh_database(database, name)
    import django

    django.setup()
    # One INFO line per enqueued task would bury the figures.
    import logging

    logging.getLogger("django-q").setLevel(logging.WARNING)
    if database == "postgres":
        from d7sms import tasks

        tasks._broker().purge_queue()
    return name


def fresh_database(database, name):
    """Create an empty, migrated database for tests/settings.py and point ``D7SMS_DB_NAME`` at
    it: PostgreSQL database ``name``, or a new SQLite file. Returns the name used."""
    if database == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    else:
        name = f"/tmp/{name}-{os.getpid()}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(name + suffix):
                os.unlink(name + suffix)
    os.environ["D7SMS_DB_NAME"] = name
    # In another process: migrating here would leave this process (the measured caller) with
    # every migration's state in memory.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return name


def cleanup(database, name):
    """Close this process's connections and remove the database :func:`fresh_database` made."""
    from django.db import connections

    connections.close_all()
    if database == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            # FORCE: a killed cluster's connections may linger for a moment.
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(name + suffix):
            os.unlink(name + suffix)


def group_rss_mb(pgid):
    """Resident memory (MB) of the largest process in process group ``pgid``."""
    largest = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        largest = max(largest, int(line.split()[1]))
                        break
        except (OSError, ProcessLookupError):
            continue
    return largest / 1024


class PeakRSS:
    """Samples the largest process of a cluster every 50 ms while running."""

    def __init__(self, pgid):
        self.pgid, self.peak, self._stop = pgid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, group_rss_mb(self.pgid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


def self_peak_rss_mb():
    """Peak resident memory of this process so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def waiting(message_model):
    """True while a message is still queued or being sent (an index probe, not a count: the
    benchmark must not take the CPU it measures)."""
    return message_model.objects.filter(status__in=("queued", "sending")).exists()


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not finish in time")
        time.sleep(interval)
