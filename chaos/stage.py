"""The stage one scenario plays on: a sandbox process, a fresh database, Django set up on it.

Built from what the benchmarks use (bench/pipeline.py) and the tests' cluster runner
(tests/cluster.py). Names are unique to this process (database ``d7sms_chaos_<pid>``, django-q2
cluster and Redis queue ``d7sms_chaos_<pid>``), so runs in parallel with the test suite or with
each other never collide. What this process logs is counted in :attr:`Stage.log`
(:class:`chaos.applog.AppLog`), not printed. :meth:`Stage.close` (also run at exit and on
SIGTERM) kills every cluster it started, stops the sandbox, deletes the Redis queue and drops
the database.
"""

import atexit
import os
import signal
import sys

from bench import pipeline
from chaos import settle
from chaos.applog import AppLog

SANDBOX_USER = pipeline.BENCH_USER


class Stage:
    """Everything one scenario needs; ``database`` is "sqlite" (ORM broker) or "postgres" (Redis broker)."""

    def __init__(self, database, settings, *, workers=2, sandbox_options=("--dlr-retries", "0")):
        self.database = database
        self.name = f"d7sms_chaos_{os.getpid()}"
        self.clusters = []
        self.sandbox = None
        self.db_name = None
        self.log = AppLog().install()
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        os.environ["D7SMS_TEST_Q_NAME"] = self.name
        self.sandbox = pipeline.SandboxProcess(sandbox_options)
        settings = {"USERNAME": SANDBOX_USER[0], "PASSWORD": SANDBOX_USER[1], "CALLBACK_BASE_URL": pipeline.CALLBACK,
                    **settings}
        try:
            self.db_name = pipeline.prepare(database, self.sandbox.url, settings, workers, name=self.name)
        except BaseException:
            self.db_name = os.environ.get("D7SMS_DB_NAME")  # made before a failed migration: remove it too
            raise
        from django.conf import settings as django_settings

        django_settings.D7SMS = {**django_settings.D7SMS, **settle.AT_ONCE}

    @property
    def label(self):
        """The configuration, as shown in the table."""
        return "sqlite+orm" if self.database == "sqlite" else "postgres+redis"

    def cluster(self, **options):
        """Start a qcluster (tests.cluster.Cluster) on this stage; it is killed at close at the latest."""
        from tests.cluster import Cluster

        cluster = Cluster(**options)
        self.clusters.append(cluster)
        return cluster.start()

    def close(self):
        """Remove everything this stage made; safe to call twice."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second stop request must not cut this short
        for cluster in self.clusters:
            cluster.kill()
            cluster.close()
        self.clusters = []
        if self.db_name and self.database == "postgres":
            from d7sms import tasks

            tasks._broker().delete_queue()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.db_name:
            pipeline.cleanup(self.database, self.db_name)
            self.db_name = None


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # runs finally blocks and atexit, so nothing is left behind
