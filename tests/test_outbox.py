"""``d7sms.outbox`` behaves as ``mail.outbox`` does: it fills inside a ``TestCase`` (no
``captureOnCommitCallbacks``) and is empty at the start of every test, in Django's test runner
and under pytest-django.

The runners run in their own processes on test modules outside this suite, so that neither
this suite's conftest nor its fixtures empty the outbox for them.
"""

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TESTCASE_MODULE = '''
import d7sms
from django.conf import settings
from django.test import TestCase, override_settings


@override_settings(D7SMS={**settings.D7SMS, "BACKEND": "locmem"})
class OutboxTests(TestCase):
    def test_first(self):
        d7sms.send_sms("+447911000001", "first")
        self.assertEqual([m.content for m in d7sms.outbox], ["first"])

    def test_second(self):
        d7sms.send_batch(["+447911000002", "+447911000003"], "second")
        self.assertEqual([m.content for m in d7sms.outbox], ["second", "second"])
'''

PYTEST_MODULE = '''
import d7sms
import pytest


@pytest.fixture
def locmem(settings):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_each_sees_only_its_own(db, locmem, n):
    d7sms.send_sms("+44791100000" + str(n), "number " + str(n))
    assert [m.content for m in d7sms.outbox] == ["number " + str(n)]
'''


def run(args, cwd):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    env.pop("D7SMS_TEST_SETTINGS", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "outbox_testcase.py").write_text(textwrap.dedent(TESTCASE_MODULE))
    (tmp_path / "test_outbox_twice.py").write_text(textwrap.dedent(TESTCASE_MODULE))
    (tmp_path / "test_outbox_pytest.py").write_text(textwrap.dedent(PYTEST_MODULE))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return tmp_path


def test_in_djangos_test_runner(project):
    result = run(["-m", "django", "test", "outbox_testcase", "test_outbox_twice", "-v", "2"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 4 tests" in result.stderr


def test_under_pytest_django(project):
    result = run(["-m", "pytest", "-q", "-p", "no:randomly", "outbox_testcase.py", "test_outbox_twice.py",
                  "test_outbox_pytest.py"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_the_pytest_plugin_is_installed_with_the_package():
    [plugin] = [e for e in entry_points(group="pytest11") if e.name == "d7sms"]
    assert plugin.value == "d7sms.pytest_plugin"


def test_the_plugin_costs_nothing_where_locmem_was_never_used(tmp_path):
    """A project without Django settings runs its tests with d7sms installed."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
