"""THROUGHPUT with a cache that cannot count (a DummyCache, or one that is down): the worker
throttles itself instead of spinning, and ``check`` says the cache is wrong."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from d7sms.project_checks import check_cache

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import time, django
django.setup()
from d7sms import throttle
wall, cpu = time.monotonic(), time.process_time()
waited = throttle.acquire(18)
print(json.dumps({"wall": time.monotonic() - wall, "cpu": time.process_time() - cpu, "waited": waited}))
"""


def run_probe(settings_overrides, timeout=20):
    """Run throttle.acquire(18) in a fresh process (a spinning one can then be killed)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "D7SMS_TEST_SETTINGS": json.dumps(settings_overrides),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.parametrize("alias", ["dummy"])
def test_a_cache_that_cannot_count_throttles_the_process_instead_of_spinning(alias):
    try:
        got, log = run_probe({"THROUGHPUT": 6, "CACHE_ALIAS": alias})
    except subprocess.TimeoutExpired:
        pytest.fail("throttle.acquire() never returned: it spins on a cache that cannot count")
    # 18 messages at 6 per second: 6 in the current window, then a whole window and part of one.
    assert 1.0 <= got["wall"] <= 6, got
    assert got["cpu"] < 0.5 * got["wall"], got  # it slept, it did not spin
    assert "cannot count" in log


def test_check_says_the_throttle_needs_a_counting_cache(settings):
    settings.D7SMS = {**settings.D7SMS, "THROUGHPUT": 10, "CACHE_ALIAS": "dummy"}
    assert [m.id for m in check_cache()] == ["d7sms.E035"]
    settings.D7SMS = {**settings.D7SMS, "CACHE_ALIAS": "default"}
    expected = ["d7sms.W030"] if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache") else []
    assert [m.id for m in check_cache()] == expected
    settings.D7SMS = {**settings.D7SMS, "THROUGHPUT": None, "CACHE_ALIAS": "dummy"}
    assert check_cache() == []
