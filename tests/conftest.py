"""Shared fixtures: a real sandbox over loopback, D7SMS settings pointed at it, the built wheel;
and a guard that fails the run if it changed the work tree."""

import hashlib
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

SANDBOX_USER = ("foo", "bar")


def pytest_report_header(config):
    return f"d7sms database: {os.environ.get('D7SMS_TEST_DATABASE', 'sqlite')}"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Forget what a test left in this process: the cached pause flag and the locmem outbox."""
    from d7sms import pause
    from d7sms.backends import locmem

    pause.forget()
    locmem.reset()
    yield
    pause.forget()
    locmem.reset()


@pytest.fixture
def sandbox():
    """A started sandbox with user foo:bar and a balance of 100, stopped afterwards."""
    from d7sms.sandbox import Sandbox, SandboxUser

    sb = Sandbox(
        host="127.0.0.1",
        port=0,
        users=[SandboxUser(SANDBOX_USER[0], SANDBOX_USER[1], Decimal("100"))],
        dlr_retries=3,
        dlr_retry_delay=0.1,
        dlr_delay=0.05,
    ).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def d7_settings(settings, sandbox):
    """D7SMS settings pointed at the ``sandbox`` fixture; returns the settings fixture."""
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": sandbox.url, "USERNAME": "foo", "PASSWORD": "bar"}
    return settings


# -- the wheel, built once per run from a copy of the sources -----------------------------------

ROOT = Path(__file__).resolve().parent.parent
# What the wheel is built from; the build runs in a copy so it leaves no build/ or egg-info here.
PACKAGE_SOURCES = ("d7sms", "pyproject.toml", "README.md", "LICENSE")


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory):
    """The path of a d7sms wheel built as `pip wheel --no-deps` builds it for a user."""
    source = tmp_path_factory.mktemp("source")
    for name in PACKAGE_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = out.glob("d7sms-*.whl")
    return wheel


# -- the work tree is left as the run found it ------------------------------------------------

_TREE = pytest.StashKey()
_CHANGED = pytest.StashKey()


def _tree_state():
    """``{git status line: hash of the file}`` of the work tree, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    state = {}
    for line in result.stdout.splitlines():
        path = ROOT / line[3:].split(" -> ")[-1].strip('"')
        state[line] = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None
    state["build/ exists"] = (ROOT / "build").exists()
    return state


def pytest_sessionstart(session):
    # `make screenshots` (D7SMS_SCREENSHOT_DIR) is asked to rewrite the README's screenshots.
    if not os.environ.get("D7SMS_SCREENSHOT_DIR"):
        session.config.stash[_TREE] = _tree_state()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if it changed the work tree: `make test` must leave `git status` as it was."""
    before = session.config.stash.get(_TREE, None)
    after = _tree_state()
    if before is None or after is None or before == after:
        return
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    session.config.stash[_CHANGED] = sorted(changed)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    changed = terminalreporter.config.stash.get(_CHANGED, None)
    if changed:
        terminalreporter.write_sep("=", "the test run changed the work tree", red=True)
        terminalreporter.write_line("Tests must write to temporary or ignored paths; changed:")
        for line in changed:
            terminalreporter.write_line(f"  {line}")
