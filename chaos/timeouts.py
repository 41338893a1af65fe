"""Scenario "504": a gateway in front of D7 answers 504 to every third POST after D7 took it.

A real cluster sends a sendout in each mode through :class:`chaos.proxy.GatewayProxy` in front
of the sandbox, with retries a few milliseconds apart. The sandbox has every message the
proxy forwarded; a 504 only hides that from the app. Promise kept when no number was received
twice: an ambiguous answer may leave a message ``unknown``, never send it again.
"""

from chaos import ledger, settle
from chaos.proxy import GatewayProxy

SIZES = {"single": (300, 90), "batch": (3000, 1500)}  # (full run, --quick)
STARTS = {"single": 200_000, "batch": 210_000}
SETTINGS = {"DLR_LEVEL": 0, "RETRY_BACKOFF": 0.02, "RETRY_BACKOFF_MAX": 0.2}


def run(stage, rng, *, quick=False, **_options):
    """Both modes on ``stage``; returns their :class:`chaos.ledger.Row`."""
    import d7sms
    from tests.cluster import numbers

    rows = []
    with GatewayProxy(stage.sandbox.url, every=3) as proxy:
        for mode in ("single", "batch"):
            count = SIZES[mode][quick]
            text = f"chaos 504 {mode}"
            recipients = numbers(count, start=STARTS[mode])
            posts, injected = proxy.posts, proxy.injected
            d7sms.send_batch(recipients, text, mode=mode)
            cluster = stage.cluster(base_url=proxy.url)
            settle.run_out()
            cluster.close()
            settle.after_kill()
            stage.sandbox.wait_idle(60)
            got = ledger.received(stage.sandbox.messages())
            row = ledger.tally(f"504 every 3rd POST, {mode} {count:,} / {stage.label}",
                               dict.fromkeys(((n, text) for n in recipients), 1), got, ledger.app_statuses([text]))
            row.notes += [f"{proxy.posts - posts} POSTs through the proxy, {proxy.injected - injected} answered 504",
                          *stage.log.take()]
            rows.append(row)
    return rows
