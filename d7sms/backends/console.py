"""A backend for development: prints each message instead of sending it."""

import sys
import threading
import uuid

from d7sms.backends import base
from d7sms.client import Balance, BatchResult


class ConsoleBackend(base.BaseBackend):
    """Writes one block per message to ``stream`` (default ``sys.stdout``)."""

    def __init__(self, stream=None):
        self.stream = stream
        self._lock = threading.Lock()

    def _write(self, to, params, note=""):
        shown = params.get("content")
        if shown is None:
            shown = f"[hex, coding {params.get('coding')}] {params.get('hex_content')}"
        lines = [f"SMS to {to} from {params.get('sender', '')}{note}", shown, "-" * 40]
        with self._lock:
            stream = self.stream or sys.stdout
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    def send_message(self, message):
        self._write(message.to, base.message_params(message))
        return str(uuid.uuid4())

    def send_chunk(self, sendout, messages, *, schedule_at=None):
        globals_, items = base.batch_payload(messages)
        note = f" (scheduled for {schedule_at.isoformat()})" if schedule_at else ""
        for item in items:
            self._write(item["to"], {**globals_, **item}, note)
        return BatchResult(str(uuid.uuid4()), len(messages), None, len(messages))

    def balance(self):
        return Balance(None, None)
