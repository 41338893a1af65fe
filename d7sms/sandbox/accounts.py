"""Sandbox user accounts: credentials, a balance charged per part and an optional SMS quota."""

import threading
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class SandboxUser:
    """One account; ``balance`` or ``sms_count`` None means no such quota (reported as ``"ND"``).

    ``sms_count`` is the number of parts the account may still send, as the real server keeps
    beside the balance; both are charged per part and either running short refuses a message.
    """

    username: str
    password: str
    balance: Decimal | None = Decimal("100")
    sms_count: int | None = None


def format_amount(amount):
    """Balance text as the provider's page shows it (``"10.23"``); None becomes ``"ND"``."""
    if amount is None:
        return "ND"
    cents = amount.quantize(Decimal("0.01"))
    # Keep every digit of prices finer than a cent rather than rounding money away.
    return str(cents) if cents == amount else format(amount.normalize(), "f")


class Accounts:
    """Thread-safe quotas; ``restore`` puts back those the sandbox started with."""

    def __init__(self, users):
        self._lock = threading.Lock()
        self._users = {u.username: u for u in users}
        self._balances = {}
        self._sms_counts = {}
        self.restore()

    def restore(self):
        """Reset every balance and SMS quota to its starting value."""
        with self._lock:
            self._balances = {
                name: (None if u.balance is None else Decimal(u.balance)) for name, u in self._users.items()
            }
            self._sms_counts = {name: u.sms_count for name, u in self._users.items()}

    def users(self):
        """The accounts as configured (starting quotas)."""
        return list(self._users.values())

    def authenticate(self, username, password):
        """True when ``username`` exists and ``password`` is its password."""
        user = self._users.get(username)
        return user is not None and user.password == password

    def charge(self, username, amount, parts=1):
        """Take ``amount`` and ``parts``; False (nothing taken) when either quota is short."""
        with self._lock:
            balance, count = self._balances[username], self._sms_counts[username]
            if (balance is not None and amount > balance) or (count is not None and parts > count):
                return False
            if balance is not None:
                self._balances[username] = balance - amount
            if count is not None:
                self._sms_counts[username] = count - parts
            return True

    def balance(self, username):
        """Current balance (Decimal, or None without quota); KeyError for an unknown user."""
        with self._lock:
            return self._balances[username]

    def sms_count(self, username):
        """Parts the account may still send (int, or None without quota)."""
        with self._lock:
            return self._sms_counts[username]

    def balances(self):
        """Snapshot ``{username: Decimal or None}``."""
        with self._lock:
            return dict(self._balances)
