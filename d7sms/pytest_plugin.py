"""d7sms's pytest plugin, registered through the ``pytest11`` entry point when d7sms is installed.

It empties ``d7sms.outbox`` (and forgets errors queued with ``locmem.inject``) before every
test, as pytest-django empties ``mail.outbox``. It imports nothing until a test has used the
locmem backend, so it costs nothing in projects that never do, with or without Django.
"""

import sys

import pytest


@pytest.fixture(autouse=True)
def _d7sms_empty_outbox():
    locmem = sys.modules.get("d7sms.backends.locmem")
    if locmem is not None:
        locmem.reset()
