"""Riding out a busy database: write transactions that queue for the lock, and short retries
when the database still says it is busy.

SQLite as ``startproject`` configures it (a 5 s busy timeout, deferred transactions, no WAL)
lets one connection write at a time. A deferred transaction that has read and then wants to
write fails at once with "database is locked" whenever another holds the write lock: SQLite
does not wait there, since both could wait for each other. :func:`write_transaction` therefore
begins d7sms's write transactions with ``BEGIN IMMEDIATE`` on such a database, so they wait
(up to the busy timeout) before reading anything. What still fails (a wait past the timeout, a
deadlock or serialization failure on PostgreSQL) is retried by :func:`retry`, from scratch and
only outside any enclosing transaction, for a bounded time: a webhook call D7 will not resend,
or a worker's record of what D7 took, must not be lost to a moment of contention.

Projects on SQLite should still set ``OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20,
"init_command": "PRAGMA journal_mode=WAL;"}`` as the demo does (README, "SQLite").
"""

import contextlib
import logging
import random
import time

from django.db import OperationalError, connections, transaction

from d7sms.models import db_alias

logger = logging.getLogger("d7sms.busy")

_BUSY_TEXTS = ("database is locked", "database table is locked", "database schema is locked")
# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
_BUSY_STATES = {"40001", "40P01", "55P03"}
_FIRST_WAIT, _LONGEST_WAIT = 0.02, 0.5


def is_busy(error):
    """True when ``error`` says only that the database was busy: the same work may succeed again."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__ or error
    if getattr(cause, "sqlstate", None) in _BUSY_STATES or getattr(cause, "pgcode", None) in _BUSY_STATES:
        return True
    text = str(error).lower()
    return any(t in text for t in _BUSY_TEXTS)


@contextlib.contextmanager
def write_transaction():
    """``transaction.atomic`` on d7sms's database that, on SQLite in deferred mode, takes the
    write lock when it begins (``BEGIN IMMEDIATE``), waiting for it rather than failing later."""
    alias = db_alias()
    conn = connections[alias]
    with contextlib.ExitStack() as stack:
        immediate = False
        if conn.vendor == "sqlite" and not conn.in_atomic_block:
            conn.ensure_connection()
            # Django reads transaction_mode (OPTIONS) when it opens the transaction.
            immediate = getattr(conn, "transaction_mode", "") is None
        if immediate:
            conn.transaction_mode = "IMMEDIATE"
            try:
                stack.enter_context(transaction.atomic(using=alias))
            finally:
                conn.transaction_mode = None
        else:
            stack.enter_context(transaction.atomic(using=alias))
        yield


def retry(work, *, seconds, what="a write", using=()):
    """Return ``work()``, run again while the database is busy, for up to ``seconds``.

    ``work`` must do all its writing in its own transaction (it is run from scratch). Inside an
    enclosing transaction on d7sms's database (or one in ``using``) nothing is retried: that
    transaction is broken, and its owner decides.
    """
    aliases = {db_alias(), *using}
    deadline = time.monotonic() + seconds
    wait = _FIRST_WAIT
    attempts = 0
    while True:
        try:
            return work()
        except OperationalError as exc:
            attempts += 1
            enclosed = any(connections[a].in_atomic_block for a in aliases)
            remaining = deadline - time.monotonic()
            if enclosed or not is_busy(exc) or remaining <= 0:
                if is_busy(exc):
                    logger.warning("The database stayed busy through %d tries of %s.", attempts, what)
                raise
            logger.info("The database is busy (%s); trying %s again.", exc, what)
            # Jittered, so that writers that failed together do not come back together; the
            # last wait ends at the deadline, for one more try.
            time.sleep(min(remaining, wait / 2 + random.uniform(0, wait / 2)))
            wait = min(_LONGEST_WAIT, wait * 2)


def after_commit(work, *, what, seconds=10):
    """Run ``work()`` once the current transaction commits, riding out a busy database; a
    failure is logged, not raised into the caller whose change has committed."""

    def run():
        try:
            retry(work, seconds=seconds, what=what)
        except Exception:  # noqa: BLE001  (the change it follows has committed; housekeeping heals)
            logger.exception("Could not run %s after a commit", what)

    transaction.on_commit(run, using=db_alias())
