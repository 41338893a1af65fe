"""Where messages go: the real D7 API, an in-memory outbox for tests, or the console.

``D7SMS["BACKEND"]`` is ``"d7"``, ``"locmem"``, ``"console"`` or a dotted path to a
:class:`~d7sms.backends.base.BaseBackend` subclass.
"""

import os

from django.utils.module_loading import import_string

from d7sms import conf

ALIASES = {
    "d7": "d7sms.backends.d7.D7Backend",
    "locmem": "d7sms.backends.locmem.LocmemBackend",
    "console": "d7sms.backends.console.ConsoleBackend",
}


def backend_class(name=None):
    """Return the backend class named by ``name`` (default: the BACKEND setting)."""
    name = name or conf.get("BACKEND")
    return import_string(ALIASES.get(name, name))


def is_local(name=None):
    """True for backends that send nothing anywhere (locmem, console)."""
    return (name or conf.get("BACKEND")) in conf.LOCAL_BACKENDS


_backends = {}


def get_backend():
    """Return this process's backend, created on first use and again when its settings change."""
    s = conf.all_settings()
    key = (os.getpid(), *(s[k] for k in ("BACKEND", "BASE_URL", "USERNAME", "PASSWORD", "CONNECT_TIMEOUT", "READ_TIMEOUT")))
    backend = _backends.get(key)
    if backend is None:
        for (pid, *_rest), old in _backends.items():
            if pid == os.getpid():  # a forked child must not close its parent's connections
                old.close()
        _backends.clear()
        backend = _backends[key] = backend_class(s["BACKEND"])()
    return backend
