"""What the app logged while a scenario ran, counted instead of printed.

    log = AppLog().install()      # warnings and errors of this process, from here on
    ...
    log.take()                    # ["3 x WARNING d7sms.webhooks: D7 id conflict on a dlr call"]

The harness prints one table, not tracebacks: each distinct first line is counted, and a
scenario puts what it took into its notes. Cluster processes log to their own files.
"""

import logging
import threading
from collections import Counter


class AppLog(logging.Handler):
    """A root handler that counts WARNING and above by level, logger and first line."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self._counts = Counter()
        self._lock_counts = threading.Lock()

    def install(self):
        """Attach to the root logger (also silences Python's last-resort printing); returns self."""
        logging.getLogger().addHandler(self)
        return self

    def emit(self, record):
        line = record.getMessage().splitlines()[0][:160] if record.getMessage() else ""
        with self._lock_counts:
            self._counts[(record.levelname, record.name, line)] += 1

    def take(self):
        """What was logged since the last call, one sentence per distinct line, most frequent first."""
        with self._lock_counts:
            counts, self._counts = self._counts, Counter()
        return [f"app logged {n} x {level} {name}: {line}" for (level, name, line), n in counts.most_common()]
