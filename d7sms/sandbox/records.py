"""What the sandbox remembers: accepted messages and every callback/DLR attempt.

Records are slotted objects turned into dicts only when someone asks, so that holding 100k
messages stays cheap and the hot path does no formatting.
"""

import datetime
import threading
from collections import Counter


def _iso(timestamp):
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


class Message:
    """One accepted message (``outcome`` is an outcomes.Outcome)."""

    __slots__ = (
        "id", "to", "sender", "content", "hex_content", "text", "coding", "parts", "charged",
        "batch_id", "dlr", "dlr_url", "dlr_level", "dlr_method", "user", "accepted_at",
        "send_at", "outcome", "id_smsc", "priority", "validity_period", "sdt", "tags",
    )

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def as_dict(self):
        """JSON-ready dict, the shape of ``Sandbox.accepted()`` items."""
        return {
            "id": self.id,
            "to": self.to,
            "from": self.sender,
            "content": self.content,
            "hex_content": self.hex_content,
            "coding": self.coding,
            "parts": self.parts,
            "charged": str(self.charged),
            "batch_id": self.batch_id,
            "dlr": self.dlr,
            "dlr_url": self.dlr_url,
            "dlr_level": self.dlr_level,
            "dlr_method": self.dlr_method,
            "user": self.user,
            "accepted_at": _iso(self.accepted_at),
            "send_at": _iso(self.send_at),
            "outcome": self.outcome.name,
            "id_smsc": self.id_smsc,
            "priority": self.priority,
            "validity_period": self.validity_period,
            "sdt": self.sdt,
            "tags": self.tags,
        }


class Delivery:
    """One attempt at calling a client URL: a batch callback/errback or a DLR."""

    __slots__ = ("kind", "url", "method", "params", "attempt", "status_code", "error", "acked",
                 "message_id", "batch_id", "at")

    def __init__(self, kind, url, method, params, attempt, status_code, error, acked,
                 message_id, batch_id, at):
        self.kind, self.url, self.method, self.params = kind, url, method, params
        self.attempt, self.status_code, self.error, self.acked = attempt, status_code, error, acked
        self.message_id, self.batch_id, self.at = message_id, batch_id, at

    def as_dict(self):
        """JSON-ready dict, the shape of ``Sandbox.deliveries()`` items."""
        return {
            "kind": self.kind,
            "url": self.url,
            "method": self.method,
            "params": dict(self.params),
            "attempt": self.attempt,
            "status_code": self.status_code,
            "error": self.error,
            "acked": self.acked,
            "message_id": self.message_id,
            "batch_id": self.batch_id,
            "at": _iso(self.at),
        }


class Store:
    """Thread-safe memory of accepted messages, delivery attempts and counters."""

    def __init__(self):
        self._lock = threading.Lock()
        self.clear()

    def clear(self):
        """Forget everything."""
        with self._lock:
            self._messages = []
            self._deliveries = []
            self._counts = Counter()

    def add_message(self, message):
        """Remember an accepted message."""
        with self._lock:
            self._messages.append(message)

    def add_delivery(self, delivery):
        """Remember one callback/DLR attempt."""
        with self._lock:
            self._deliveries.append(delivery)

    def count(self, key, n=1):
        """Add ``n`` to counter ``key``."""
        with self._lock:
            self._counts[key] += n

    def messages(self, to=None):
        """Dicts of accepted messages, oldest first, optionally only those sent to ``to``."""
        with self._lock:
            items = list(self._messages)
        if to is not None:
            to = str(to)
            items = [m for m in items if m.to == to]
        return [m.as_dict() for m in items]

    def deliveries(self, kind=None):
        """Dicts of delivery attempts, in the order they finished, optionally of one ``kind``."""
        with self._lock:
            items = list(self._deliveries)
        return [d.as_dict() for d in items if kind is None or d.kind == kind]

    def stats(self):
        """Counts: accepted messages, delivery attempts by kind and acks, and the counters."""
        with self._lock:
            messages, deliveries, counts = len(self._messages), list(self._deliveries), dict(self._counts)
        by_kind = Counter(d.kind for d in deliveries)
        acked = Counter(d.kind for d in deliveries if d.acked)
        return {
            "accepted": messages,
            "deliveries": {
                k: {"attempts": by_kind[k], "acked": acked[k]} for k in ("callback", "errback", "dlr")
            },
            **counts,
        }
