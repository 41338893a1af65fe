"""A local stand-in for the Direct7 (D7) REST API, speaking its wire format over real HTTP.

    from d7sms.sandbox import Sandbox, SandboxUser
    sb = Sandbox(users=[SandboxUser("foo", "bar", Decimal("100"))]).start()
    ...  # point the client at sb.url
    sb.wait_idle(5); sb.accepted(); sb.deliveries(); sb.stop()

It answers ``GET /ping``, ``POST /secure/send``, ``POST /secure/sendbatch``,
``GET /secure/balance`` and ``GET /secure/rate`` with the status codes and bodies of the real
server (see shared/spec/wire-notes.md), charges each message part, calls batch callbacks and
throws DLRs with retries until the receiver answers ``ACK/Jasmin``.

Outcomes by the destination's last digit:

=======  ==================================================================================
ending   what happens
=======  ==================================================================================
9        accepted; DLR level 1 ESME_ROK, then level 2 UNDELIV (err 001)
8        accepted; DLR level 1 ESME_RSUBMITFAIL (rejected by the SMSC), no level-2 report
7        no route: /secure/send answers 412 "No route found"; in a batch it goes to the
         errback; never charged
6        accepted; DLR level 1 ESME_ROK, then level 2 EXPIRED
other    accepted; DLR level 1 ESME_ROK, then level 2 DELIVRD (err 000)
=======  ==================================================================================

Faults (``set_faults``, ``POST /_sandbox/faults``, or ``X-Sandbox-Fault`` on one request):
latency, 500s, 429s with ``Retry-After: 1``, dropped connections (reset after the request
was read; the message is not accepted) and malformed 200 answers (the message is accepted).

Introspection, without auth: ``GET /_sandbox/messages[?to=]``, ``GET /_sandbox/deliveries``,
``GET /_sandbox/stats``, ``POST /_sandbox/reset``, ``GET|POST /_sandbox/faults``.

This package does not import Django, so ``python -m d7sms.sandbox`` runs it anywhere.
"""

from .accounts import SandboxUser
from .app import Sandbox
from .faults import Faults
from .outcomes import OUTCOMES_HELP

__all__ = ["Sandbox", "SandboxUser", "Faults", "OUTCOMES_HELP"]
