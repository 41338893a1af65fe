"""`make demo`: a port that is taken is named with the variable that moves it, and a `kill`
stops everything the demo started, also a process that ignores SIGTERM.

All of it with real processes and real signals: the demo itself (through make), and the
supervisor with children that ignore SIGTERM.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.demo,
    # Nothing here uses the suite's test database: once, in the SQLite pass, is enough.
    pytest.mark.skipif(os.environ.get("D7SMS_TEST_DATABASE") == "postgres", reason="runs in the SQLite pass"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(tmp_path, **extra):
    """The environment a user has: none of this suite's Django or d7sms variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("D7SMS_", "DJANGO_"))}
    env.update(D7SMS_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1", **extra)
    return env


# -- processes, from /proc --------------------------------------------------------------------


def _stat(pid):
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return {"state": fields[0], "ppid": int(fields[1]), "pgid": int(fields[2]), "sid": int(fields[3])}


def descendants(pid):
    """Every live process below ``pid``."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(stat["ppid"], []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids):
    return {pid for pid in pids if (stat := _stat(pid)) and stat["state"] != "Z"}


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def kill_all(pids):
    for pid in alive(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Output:
    """Collects a process's output in a thread; :meth:`wait_for` a line containing some text."""

    def __init__(self, stream):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def wait_for(self, needle, timeout, proc):
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never came:\n{self.text()[-5000:]}")
            time.sleep(0.1)


# -- a port that is taken ---------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["D7SMS_DEMO_PORT", "D7SMS_SANDBOX_PORT"])
def test_a_taken_port_is_named_with_the_variable_that_moves_it(tmp_path, variable):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"D7SMS_DEMO_PORT": str(free_port()), "D7SMS_SANDBOX_PORT": str(free_port())}
        ports[variable] = str(busy.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "demo_project.run"], cwd=ROOT, env=demo_env(tmp_path, **ports),
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {ports[variable]} on 127.0.0.1 cannot be used" in result.stderr
    assert f"set {variable} to a free port, e.g. `{variable}=" in result.stderr
    assert "demo is running" not in result.stdout and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "db.sqlite3").exists(), "it migrated before finding the port taken"


# -- the supervisor, with children that ignore SIGTERM ----------------------------------------

STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
# A grandchild in the same process group, as django-q2's workers are; it ignores SIGTERM too.
IGNORE_AND_SLEEP = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
subprocess.Popen([sys.executable, "-c", IGNORE_AND_SLEEP])
print("ready", flush=True)
time.sleep(300)
"""

SUPERVISED = """
import sys
from demo_project.supervise import Supervisor
supervisor = Supervisor(stop_timeout=float(sys.argv[1]))
supervisor.install_handlers()
try:
    supervisor.start("stubborn", [sys.executable, "-c", {stubborn!r}])
    supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(300)"])
    print("started", flush=True)
    print(supervisor.wait(), flush=True)
finally:
    supervisor.stop()
"""


def start_supervised(stop_timeout, **popen):
    code = textwrap.dedent(SUPERVISED).format(stubborn=textwrap.dedent(STUBBORN))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(stop_timeout)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, **popen,
    )
    out = Output(proc.stdout)
    out.wait_for("ready", 30, proc)
    out.wait_for("started", 30, proc)
    time.sleep(0.3)  # the grandchild is started
    return proc, out


def test_sigterm_stops_children_that_ignore_it(tmp_path):
    proc, out = start_supervised(stop_timeout=1)
    started = descendants(proc.pid)
    assert len(started) >= 3, out.text()
    try:
        # What `kill %1` of a job does in an interactive shell: the signal reaches the group,
        # and a wrapper may pass on another.
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert wait_gone(started, 10) == set(), out.text()
        assert "The stubborn did not stop on SIGTERM; killing it." in out.text()
    finally:
        kill_all(started)


def test_the_supervisor_stops_everything_when_its_parent_dies(tmp_path):
    """`make demo` killed with SIGKILL (or a wrapper that passes nothing on) still stops it all."""
    wrapper = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])", sys.executable, "-c",
         textwrap.dedent(SUPERVISED).format(stubborn=textwrap.dedent(STUBBORN)), "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(wrapper.stdout)
    out.wait_for("started", 30, wrapper)
    time.sleep(0.5)
    started = descendants(wrapper.pid)
    try:
        wrapper.kill()  # the parent dies without a word
        wrapper.wait(10)
        assert wait_gone(started, 20) == set(), out.text()
    finally:
        kill_all(started)


# -- the demo itself --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["make alone", "the whole job"])
def test_kill_of_make_demo_stops_everything_it_started(tmp_path, how):
    """`make demo &` then `kill %1`: without job control the SIGTERM reaches make alone (which
    passes it on), with it the whole job (so the supervisor gets two). django-q2's cluster takes
    longer than D7SMS_DEMO_STOP_TIMEOUT to stop, so it is killed."""
    port, sandbox_port = free_port(), free_port()
    env = demo_env(tmp_path, D7SMS_DEMO_PORT=str(port), D7SMS_SANDBOX_PORT=str(sandbox_port),
                   D7SMS_DEMO_STOP_TIMEOUT="3")
    # -o install: the package is installed already; the recipe is `make demo`'s own.
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-o", "install", f"PY={sys.executable}", "demo"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    out = Output(make.stdout)
    started = set()
    try:
        out.wait_for("d7sms demo is running", 120, make)
        out.wait_for("running.", 60, make)  # the cluster's "Q Cluster ... running."
        started = descendants(make.pid)
        commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in alive(started))
        for what in ("demo_project.run", "d7sms_sandbox", "qcluster", "runserver"):
            assert what in commands, commands
        if how == "make alone":
            make.send_signal(signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGTERM)
        make.wait(30)
        assert wait_gone(started, 30) == set(), out.text()[-5000:]
        for busy in (port, sandbox_port):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", busy)) != 0, f"port {busy} still answers"
    finally:
        kill_all(started | {make.pid})
