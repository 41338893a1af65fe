"""Many callers through one door at the same moment: the double click, the second tab, the replay.

    from chaos import crowd
    crowd.resend(message.pk)            # 8 threads call d7sms.api.resend on the same message
    crowd.retry_failed(sendout.pk)      # 8 threads call d7sms.api.retry_failed on the same sendout
    draft = crowd.preview(user, numbers, "Hello")
    crowd.confirm(user, draft)          # 8 threads POST the same preview's confirm form
    with crowd.no_skip_locked():        # as on MySQL/MariaDB without SKIP LOCKED
        crowd.send_single(ids)          # 8 workers run the same task (a redelivered one)

Each caller is a thread with its own database connection (Django opens one per thread, and
each is closed when its thread ends). Callers first do what their own request would do (read
the row, log in), then wait at a barrier and are released together, so the calls overlap as
closely as threads allow. Every function returns one item per caller, in order: what the call
returned, or the exception it raised. Nothing here checks the outcome: the caller counts
at the sandbox (see :mod:`chaos.ledger`). Usable from pytest with
``django_db(transaction=True)``, and from the harness.
"""

import contextlib
import re
import threading

CALLERS = 8
COMPOSE_URL = "/admin/d7sms/sendout/compose/"


def at_once(call, n=CALLERS, *, prepare=None, timeout=120):
    """Run ``call(prepared)`` in ``n`` threads released together; ``prepared`` is what
    ``prepare(i)`` returned in that thread before the release (None without ``prepare``)."""
    from django.db import connections

    barrier = threading.Barrier(n)
    results = [None] * n

    def caller(i):
        try:
            try:
                prepared = prepare(i) if prepare else None
            except Exception:
                barrier.abort()  # the others must not wait for this one
                raise
            barrier.wait(timeout)
            results[i] = call(prepared)
        except Exception as exc:  # noqa: BLE001  (the outcome of this caller, handed back)
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=caller, args=(i,), name=f"crowd-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"a caller did not finish within {timeout} s")
    return results


def resend(message_id, n=CALLERS):
    """``n`` callers of ``d7sms.api.resend`` on message ``message_id``, each with the row as it read it."""
    from d7sms import api
    from d7sms.models import Message

    return at_once(api.resend, n, prepare=lambda i: Message.objects.get(pk=message_id))


def retry_failed(sendout_id, n=CALLERS):
    """``n`` callers of ``d7sms.api.retry_failed`` on sendout ``sendout_id``; each returns a count."""
    from d7sms import api
    from d7sms.models import Sendout

    return at_once(api.retry_failed, n, prepare=lambda i: Sendout.objects.get(pk=sendout_id))


def preview(user, numbers, content, *, mode="batch", sender="Chaos", url=COMPOSE_URL):
    """Compose a sendout in the admin as ``user`` and return the preview's draft token."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    form = {
        "name": "chaos", "sender": sender, "content": content, "recipients": "\n".join(numbers),
        "region": "", "dlr_level": "3", "mode": mode, "when": "now", "where": "local", "coding": "8",
    }
    response = client.post(url, form)
    match = re.search(r'name="draft" value="([^"]+)"', response.content.decode())
    if response.status_code != 200 or not match:
        raise AssertionError(f"no preview (HTTP {response.status_code})")
    return match.group(1)


def confirm(user, draft, n=CALLERS, *, url=COMPOSE_URL):
    """``n`` callers POSTing the confirm form of the same preview; each returns its HTTP status."""
    from django.test import Client

    def logged_in(i):
        client = Client()
        client.force_login(user)
        return client

    def post(client):
        return client.post(url, {"_action": "confirm", "draft": draft}).status_code

    return at_once(post, n, prepare=logged_in)


def send_single(ids, n=CALLERS):
    """``n`` workers running the same single-mode task on messages ``ids`` at once (as when a
    task is delivered again); each returns the ids it left over."""
    from d7sms import sending

    ids = list(ids)
    return at_once(lambda _p: sending.send_single(ids), n)


@contextlib.contextmanager
def no_skip_locked():
    """Make every connection of the default database's backend report no ``SKIP LOCKED``, as
    MySQL before 8 and MariaDB before 10.6 do: the one such database this machine cannot run.
    Affects every thread while it lasts."""
    from django.db import connection

    features = type(connection.features)
    before = features.__dict__.get("has_select_for_update_skip_locked")
    features.has_select_for_update_skip_locked = False
    try:
        yield
    finally:
        if before is None:
            del features.has_select_for_update_skip_locked
        else:
            features.has_select_for_update_skip_locked = before
