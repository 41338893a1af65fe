"""Command line of the sandbox, shared by ``python -m d7sms.sandbox`` and ``manage.py d7sms_sandbox``."""

import argparse
import sys
import time
from decimal import Decimal, InvalidOperation

from .accounts import SandboxUser
from .app import Sandbox
from .faults import Faults
from .gateway import DEFAULT_PRICE_PER_PART
from .outcomes import OUTCOMES_HELP

DESCRIPTION = "Run a local server that speaks the Direct7 (D7) REST API, until Ctrl-C."
DEFAULT_USER = "sandbox:sandbox:1000"
EPILOG = OUTCOMES_HELP + """

Faults for one request: header X-Sandbox-Fault: 500 | 429 | drop | malformed | latency=MS.
Introspection: GET /_sandbox/messages[?to=], /_sandbox/deliveries, /_sandbox/stats;
POST /_sandbox/reset; POST /_sandbox/faults with JSON keys error_500_rate, error_429_rate,
drop_rate, malformed_rate, latency_ms, seed."""


def parse_user(value):
    """SandboxUser from ``NAME:PASSWORD:BALANCE`` (BALANCE ``ND``: no quota)."""
    name, sep, rest = value.partition(":")
    password, sep2, balance = rest.rpartition(":")
    if not (sep and sep2 and name):
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD:BALANCE, got {value!r}")
    if balance.upper() == "ND":
        return SandboxUser(name, password, None)
    try:
        return SandboxUser(name, password, Decimal(balance))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"balance is not a number: {balance!r}") from None


def _rate(value):
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("a rate is a share between 0 and 1")
    return rate


def add_arguments(parser):
    """Add the sandbox's options to an argparse parser (Django's command parser included)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="port to bind, 0 for any (default 8099)")
    parser.add_argument("--user", action="append", type=parse_user, dest="users",
                        metavar="NAME:PASSWORD:BALANCE",
                        help=f"an account; repeatable (default {DEFAULT_USER})")
    parser.add_argument("--price-per-part", type=Decimal, default=DEFAULT_PRICE_PER_PART,
                        help=f"charge per message part (default {DEFAULT_PRICE_PER_PART})")
    parser.add_argument("--dlr-delay", type=float, default=0.2,
                        help="seconds before the level-1 DLR; level 2 follows at twice that (default 0.2)")
    parser.add_argument("--dlr-retries", type=int, default=3,
                        help="times a DLR is resent until ACK/Jasmin (default 3)")
    parser.add_argument("--dlr-retry-delay", type=float, default=2.0,
                        help="seconds between DLR resends (default 2; the real server uses 30)")
    parser.add_argument("--callback-timeout", type=float, default=5.0,
                        help="seconds to wait for a callback or DLR receiver (default 5)")
    parser.add_argument("--fail-rate", type=_rate, default=0.0, help="share of requests answered 500")
    parser.add_argument("--rate-limit-rate", type=_rate, default=0.0,
                        help="share answered 429 (Retry-After: 1)")
    parser.add_argument("--drop-rate", type=_rate, default=0.0,
                        help="share of connections reset after the request was read (not accepted)")
    parser.add_argument("--malformed-rate", type=_rate, default=0.0,
                        help="share answered 200 with a garbled body (message accepted)")
    parser.add_argument("--gateway-timeout-rate", type=_rate, default=0.0,
                        help="share answered 504 by a gateway after the server took the request")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every request")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws, for repeatable runs")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def build_parser(prog=None):
    """A standalone parser with the sandbox's options."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_arguments(parser)


def sandbox_from_options(options):
    """A (not yet started) Sandbox from parsed options, given as a dict."""
    users = options.get("users") or [parse_user(DEFAULT_USER)]
    faults = Faults(
        error_500_rate=options["fail_rate"], error_429_rate=options["rate_limit_rate"],
        drop_rate=options["drop_rate"], malformed_rate=options["malformed_rate"],
        latency_ms=options["latency_ms"], seed=options["seed"],
        gateway_timeout_rate=options.get("gateway_timeout_rate", 0.0),
    )
    return Sandbox(
        host=options["host"], port=options["port"], users=users, price_per_part=options["price_per_part"],
        dlr_retries=options["dlr_retries"], dlr_retry_delay=options["dlr_retry_delay"],
        dlr_delay=options["dlr_delay"], callback_timeout=options["callback_timeout"],
        faults=faults, quiet=not options["verbose"],
    )


def serve(sandbox, out=sys.stdout):
    """Start ``sandbox``, say where it listens and with which accounts, run until Ctrl-C."""
    sandbox.start()
    out.write(f"D7 sandbox listening on {sandbox.url}\n")
    for user in sandbox.accounts.users():
        balance = "ND" if user.balance is None else user.balance
        out.write(f"  user {user.username}:{user.password} balance {balance}\n")
    out.write("Quit with Ctrl-C.\n")
    out.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


def main(argv=None):
    """Entry point of ``python -m d7sms.sandbox``."""
    options = vars(build_parser(prog="python -m d7sms.sandbox").parse_args(argv))
    serve(sandbox_from_options(options))
