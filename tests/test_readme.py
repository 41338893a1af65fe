"""The README works as written in a brand-new project.

The wheel is built and installed into a fresh virtualenv; `django-admin startproject mysite`
makes a project on the SQLite settings it writes; then the README's marked blocks (see
tests/readme_support.py) are applied and run as a user would type them: the install command,
the settings and URL additions, `migrate`, `d7sms_setup` and `check` with no SMS credentials
set, a send through the sandbox with a real `qcluster` and `runserver` until the message is
`delivered`, and the testing recipe under `manage.py test` (twice in one run) and pytest-django.

What differs from the letter of the README, and why: the ports 8000 and 8099 become free ones
(this machine runs other things), `/path/to/d7sms` becomes the built wheel, and `pip install`
gets `--no-index --find-links <wheelhouse>`. The wheelhouse (in this virtualenv, beside the
interpreter) is filled once from the configured package indexes; later runs need no network.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import readme_support as readme

pytestmark = [
    pytest.mark.readme,
    # Nothing here uses the suite's test database: once, in the SQLite pass, is enough.
    pytest.mark.skipif(os.environ.get("D7SMS_TEST_DATABASE") == "postgres", reason="runs in the SQLite pass"),
]

PROJECT = "mysite"
WHEELHOUSE = Path(sys.prefix) / "d7sms-wheelhouse"
# What the README has installed by the time it is done: the package and the testing section's.
REQUIREMENTS = ["pytest-django"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Shell:
    """Runs the lines of a README shell block as a user types them: ``export A=B ...`` sets
    variables, a command ending in ``&`` starts in the background, anything else must succeed.
    Nothing else is understood, so the README stays this plain."""

    def __init__(self, cwd, env, substitutions=(), pip_options=()):
        self.cwd, self.env = cwd, dict(env)
        self.substitutions = list(substitutions)
        self.pip_options = list(pip_options)
        self.background = []
        self.log = []

    def substitute(self, line):
        for pattern, value in self.substitutions:
            line = re.sub(pattern, value, line)
        return line

    def run(self, block, timeout=300):
        """Run every line of ``block``; return the finished commands' results, in order."""
        results = []
        for raw in block.text.splitlines():
            line = self.substitute(raw.split(" #")[0].strip())
            if not line:
                continue
            words = shlex.split(line)
            if words[0] == "export":
                self.env.update(word.split("=", 1) for word in words[1:])
                continue
            background = words[-1] == "&"
            words = words[:-1] if background else words
            if words[:2] == ["pip", "install"]:
                words += self.pip_options
            words[0] = shutil.which(words[0], path=self.env["PATH"]) or words[0]
            if background:
                log = open(self.cwd / f"background-{len(self.background)}.log", "w")  # noqa: SIM115
                proc = subprocess.Popen(words, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                self.background.append((line, proc, log))
                continue
            result = subprocess.run(words, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                                    timeout=timeout)
            self.log.append((line, result))
            assert result.returncode == 0, f"`{raw}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            results.append(result)
        return results

    def background_output(self):
        return "\n".join(f"--- {line}\n{Path(log.name).read_text(errors='replace')[-3000:]}"
                         for line, _proc, log in self.background)

    def stop(self):
        for _line, proc, _log in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _line, proc, log in self.background:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what the process started, too
            except ProcessLookupError:
                pass
            proc.wait()
            log.close()


def user_env(venv):
    """A user's shell after `source venv/bin/activate`: none of this suite's variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("D7SMS_", "DJANGO_", "PYTEST_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def fill_wheelhouse(pip, wheel):
    """Make sure the wheelhouse holds everything the README installs; download only what is missing."""
    WHEELHOUSE.mkdir(exist_ok=True)
    # Resolving from the wheelhouse alone succeeds when it is complete (works with any pip).
    offline = [pip, "download", "--no-index", "--find-links", str(WHEELHOUSE), "--dest", str(WHEELHOUSE),
               str(wheel), *REQUIREMENTS]
    if subprocess.run(offline, capture_output=True, text=True, timeout=300).returncode != 0:
        download = subprocess.run([pip, "download", "--dest", str(WHEELHOUSE), str(wheel), *REQUIREMENTS],
                                  capture_output=True, text=True, timeout=900)
        assert download.returncode == 0, f"could not fill {WHEELHOUSE}:\n{download.stderr[-3000:]}"
    for copy in WHEELHOUSE.glob("d7sms-*.whl"):  # the wheel under test is always the fresh one
        copy.unlink()


@pytest.fixture(scope="module")
def project(built_wheel, tmp_path_factory):
    """A fresh virtualenv with the README's install command run, and a new project with the
    README's settings and URLs added; returns ``(folder, environment, pip options)``."""
    root = tmp_path_factory.mktemp("readme")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    fill_wheelhouse(str(venv / "bin" / "pip"), built_wheel)
    env = user_env(venv)
    pip_options = ["--no-index", "--find-links", str(WHEELHOUSE)]
    Shell(root, env, [(r"/path/to/d7sms", str(built_wheel))], pip_options).run(readme.block("shell", "install"))
    subprocess.run([str(venv / "bin" / "django-admin"), "startproject", PROJECT], cwd=root, env=env, check=True)
    folder = root / PROJECT
    assert "sqlite3" in (folder / PROJECT / "settings.py").read_text()
    return folder, env, pip_options


@pytest.fixture(scope="module")
def ports():
    return {"web": free_port(), "sandbox": free_port()}


def port_substitutions(ports):
    return [(r"\b8000\b", str(ports["web"])), (r"\b8099\b", str(ports["sandbox"]))]


@pytest.fixture(scope="module")
def configured(project, ports):
    """The project with the README's additions to settings.py and urls.py."""
    folder, env, pip_options = project
    for target in ("mysite/settings.py", "mysite/urls.py"):
        addition = readme.block("append", target).text
        for pattern, value in port_substitutions(ports):
            addition = re.sub(pattern, value, addition)
        with open(folder / target, "a") as f:
            f.write("\n\n" + addition)
    return project


@pytest.fixture(scope="module")
def set_up(configured):
    """The README's set-up commands, run with no SMS credentials in the environment."""
    folder, env, pip_options = configured
    assert not any(k.startswith("D7SMS_") for k in env)
    shell = Shell(folder, env)
    results = shell.run(readme.block("shell", "setup"))
    return configured, results


def manage(project, *args, **env_extra):
    folder, env, _pip = project
    return subprocess.run([str(Path(env["VIRTUAL_ENV"]) / "bin" / "python"), "manage.py", *args], cwd=folder,
                          env={**env, **env_extra}, capture_output=True, text=True, timeout=300)


def test_set_up_runs_without_credentials_and_check_is_silent(set_up):
    project, (migrate, setup, check) = set_up
    assert "Applying d7sms.0001" in migrate.stdout
    assert "Created schedule 'd7sms-housekeeping'" in setup.stdout
    assert check.stdout.strip() == "System check identified no issues (0 silenced)." and not check.stderr
    showmigrations = manage(project, "showmigrations", "d7sms")
    assert showmigrations.returncode == 0 and "[X] 0001" in showmigrations.stdout
    # Production values are the deploy checks' business.
    deploy = manage(project, "check", "--deploy")
    assert deploy.returncode == 1 and "d7sms.E001" in deploy.stderr and "d7sms.E004" in deploy.stderr


def test_a_message_sent_as_the_readme_says_is_delivered(set_up, ports):
    project, _ = set_up
    folder, env, _pip = project
    shell = Shell(folder, env, port_substitutions(ports))
    sandbox = f"http://127.0.0.1:{ports['sandbox']}"
    try:
        [send] = shell.run(readme.block("shell", "try"))
        assert re.fullmatch(r"Message \d+ to \+447400123450 queued\.\n", send.stdout), send.stdout
        statuses = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with sqlite3.connect(folder / "db.sqlite3", timeout=20) as db:
                statuses = [row[0] for row in db.execute("SELECT status FROM d7sms_message")]
                reports = db.execute("SELECT COUNT(*) FROM d7sms_deliveryreport").fetchone()[0]
            if statuses == ["delivered"] and reports == 2:
                break
            time.sleep(0.5)
        assert statuses == ["delivered"], f"{statuses}\n{shell.background_output()}"
        assert reports == 2, "level 1 and level 2 reports"
        accepted = json.load(urllib.request.urlopen(f"{sandbox}/_sandbox/messages", timeout=10))
        assert [(m["to"], m["content"], m["dlr_level"]) for m in accepted] == [("+447400123450", "Hello from d7sms", 3)]
        dlrs = json.load(urllib.request.urlopen(f"{sandbox}/_sandbox/deliveries?kind=dlr", timeout=10))
        assert sum(d["acked"] for d in dlrs if d["kind"] == "dlr") == 2
        # The receivers' OpenAPI schema, in a project with no REST_FRAMEWORK or drf-spectacular settings.
        schema = urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/d7sms/schema/", timeout=30)
        assert schema.status == 200 and b"/d7sms/dlr/" in schema.read()
    finally:
        shell.stop()


def test_the_testing_recipe_passes_in_djangos_runner_and_pytest_django(set_up):
    project, _ = set_up
    folder, env, pip_options = project
    for target in ("mysite/test_sms.py", "mysite/test_sms_pytest.py", "pytest.ini"):
        (folder / target).write_text(readme.block("file", target).text)
    # The same recipe twice in one run: the outbox must be empty at the start of every test.
    shutil.copy(folder / "mysite/test_sms.py", folder / "mysite/test_sms_again.py")
    test, pip, pytest_run = Shell(folder, env, pip_options=pip_options).run(readme.block("shell", "test"))
    assert "Ran 4 tests" in test.stderr and "OK" in test.stderr
    assert "System check identified no issues" in test.stdout, test.stdout
    assert re.search(r"\b5 passed\b", pytest_run.stdout), pytest_run.stdout


def test_the_redis_broker_without_redis_is_reported_by_check(configured):
    """`pip install /path/to/d7sms` brings no Redis client: check says so before qcluster dies."""
    folder, env, _pip = configured
    python = str(Path(env["VIRTUAL_ENV"]) / "bin" / "python")
    assert subprocess.run([python, "-c", "import redis"], env=env, capture_output=True).returncode == 1
    (folder / "mysite" / "settings_redis.py").write_text(
        "from mysite.settings import *  # noqa\n\n"
        'Q_CLUSTER = {k: v for k, v in Q_CLUSTER.items() if k != "orm"} | {"redis": "redis://127.0.0.1:6379/0"}\n'
    )
    result = manage(configured, "check", "--settings", "mysite.settings_redis")
    assert result.returncode == 1 and "d7sms.E033" in result.stderr and "d7sms[redis]" in result.stderr
