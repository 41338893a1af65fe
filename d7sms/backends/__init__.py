"""Where messages go: the real D7 API, an in-memory outbox for tests, or the console.

``D7SMS["BACKEND"]`` is ``"d7"``, ``"locmem"``, ``"console"`` or a dotted path to a
:class:`~d7sms.backends.base.BaseBackend` subclass.
"""

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
    name = name or conf.get("BACKEND")
    return name in ("locmem", "console") or ALIASES.get(name, name) in (ALIASES["locmem"], ALIASES["console"])
