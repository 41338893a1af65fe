"""Scenario "kill": SIGKILL of the whole cluster at random moments while a sendout goes out.

For each mode (one ``/secure/send`` per message, then ``/secure/sendbatch`` chunks): store the
sendout, then ``kills`` times start a real ``qcluster``, wait until a random share of what is
left has been sent (up to 30 % of an even share per run to come, then up to 0.05 s more), and kill
the cluster's whole process group with SIGKILL; after each kill, housekeeping recovers as after
a crash (what was ``sending`` becomes ``unknown``; what no task covers is enqueued again). After the last kill a
cluster runs until nothing waits. Promise kept when every number was received at most once
and nothing is lost; the number of ``unknown`` messages each kill left is recorded, with how
many of them the sandbox had in fact received.
"""

import time

from chaos import ledger, settle

SIZES = {"single": (3000, 1500), "batch": (20000, 12000)}  # (full run, --quick)
STARTS = {"single": 0, "batch": 100_000}
SETTINGS = {"DLR_LEVEL": 0}


def run(stage, rng, *, quick=False, kills=6):
    """Both modes on ``stage``; returns their :class:`chaos.ledger.Row`."""
    return [_one(stage, rng, mode, SIZES[mode][quick], kills) for mode in ("single", "batch")]


def _one(stage, rng, mode, count, kills):
    import d7sms
    from tests.cluster import numbers

    text = f"chaos kill {mode}"
    recipients = numbers(count, start=STARTS[mode])
    d7sms.send_batch(recipients, text, mode=mode)
    per_kill, notes = [], []
    for i in range(kills):
        # A random share of what is left over the kills still to come (and the final run):
        # every kill lands mid-sendout.
        step = rng.uniform(0.0, 0.3) * settle.waiting() / (kills - i + 1)
        cluster = stage.cluster()
        if not _wait_for_progress(step):
            notes.append(f"the sendout finished before kill {i + 1} of {kills}")
            cluster.close()
            break
        time.sleep(rng.uniform(0, 0.05))
        cluster.kill()
        cluster.close()
        unknown_ids, _swept = settle.after_kill()
        per_kill.append(unknown_ids)
    last = stage.cluster()
    settle.run_out()
    last.close()
    leftover, _swept = settle.after_kill()
    if len(per_kill) < 5:
        notes.append(f"ONLY {len(per_kill)} KILLS LANDED mid-sendout (5 wanted): make the sendout larger")
    if leftover:
        notes.append(f"{len(leftover)} messages still sending after a graceful stop")
    stage.sandbox.wait_idle(60)
    got = ledger.received(stage.sandbox.messages())
    row = ledger.tally(f"kill -9 x{len(per_kill)}, {mode} {count:,} / {stage.label}",
                       dict.fromkeys(((n, text) for n in recipients), 1), got, ledger.app_statuses([text]))
    row.unknown_per_kill = [(len(ids), _received(ids, got)) for ids in per_kill]
    row.notes += notes + stage.log.take()
    return row


def _wait_for_progress(step, timeout=120):
    """Wait until ``step`` more messages left the queue; False when nothing is left to send."""
    target = settle.waiting() - step
    deadline = time.monotonic() + timeout
    while (left := settle.waiting()) > target:
        if not left:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"no progress within {timeout} s")
        time.sleep(0.05)
    return bool(left)


def _received(ids, got):
    """How many of the messages ``ids`` the sandbox received."""
    from d7sms.models import Message

    rows = Message.objects.filter(pk__in=ids).values_list("to", "content")
    return sum(1 for slot in rows if got.get(slot))
