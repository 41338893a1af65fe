"""Run a few long-lived processes side by side and stop every one of them, whatever happens.

Each process is started in a session of its own, so the terminal's Ctrl-C reaches only the
supervisor, which stops them in order: SIGTERM to each process group (the process and whatever
it started, such as django-q2's workers), then SIGKILL to any group still there after
``stop_timeout`` seconds, or at once on a second Ctrl-C or SIGTERM a second or more after the
first. SIGTERM and SIGHUP stop them as Ctrl-C does. Signals only set a flag: ``kill %1`` of
``make demo &`` signals the whole job and make passes its SIGTERM on as well, and a second
signal must not cut the stop short (it used to, leaving the cluster running). The death of the
supervisor's parent (``make`` killed with SIGKILL) stops everything too.

A leader that has exited is not reaped until its group has been killed: while it is a zombie
its process id cannot be reused, so the SIGKILL cannot reach an unrelated process group.
"""

import os
import signal
import socket
import subprocess
import sys
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Signals closer together than this count as one: `kill %1` reaches the whole job, so the
# supervisor may get one SIGTERM directly and one more from a wrapper.
REPEAT_AFTER = 1.0


class StartFailed(Exception):
    """A process exited, or did not get ready, while starting."""


class Supervisor:
    """Start named commands with :meth:`start`, then :meth:`wait` and always :meth:`stop`."""

    def __init__(self, stop_timeout=10.0, out=sys.stderr):
        self.stop_timeout = stop_timeout
        self.out = out
        self.procs = []  # (name, Popen)
        self.signals = []  # monotonic times of stop signals received
        self.parent = os.getppid()

    # -- signals and the parent -------------------------------------------------------------

    def install_handlers(self):
        """Make Ctrl-C, SIGTERM and SIGHUP ask for a stop instead of killing this process."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.signals.append(time.monotonic())

    def stop_requested(self):
        """True once a stop signal arrived or this process's parent has gone."""
        return bool(self.signals) or os.getppid() != self.parent

    def _hurried(self):
        # A second request, clearly separate from the first, means "now".
        return len(self.signals) > 1 and self.signals[-1] - self.signals[0] >= REPEAT_AFTER

    # -- processes --------------------------------------------------------------------------

    def start(self, name, command, **popen):
        """Start ``command`` in a session of its own; returns the Popen."""
        proc = subprocess.Popen(command, start_new_session=True, **popen)
        self.procs.append((name, proc))
        return proc

    @staticmethod
    def exited(proc):
        """The exit status of ``proc`` if it has exited, else None; never reaps it."""
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped
            return proc.returncode if proc.returncode is not None else 0
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def first_exited(self):
        """``(name, status)`` of a process that has exited, or None while all run."""
        for name, proc in self.procs:
            status = self.exited(proc)
            if status is not None:
                return name, status
        return None

    def wait_ready(self, ports, host, timeout=60.0):
        """Wait until every port in ``ports`` (name -> port) accepts connections.

        Raises :class:`StartFailed` naming the process that exited or the port that never
        answered, and KeyboardInterrupt when a stop was asked for meanwhile.
        """
        deadline = time.monotonic() + timeout
        waiting = dict(ports)
        while waiting:
            if self.stop_requested():
                raise KeyboardInterrupt
            gone = self.first_exited()
            if gone:
                raise StartFailed(
                    f"The {gone[0]} stopped while starting (exit status {gone[1]}); see its output above."
                )
            for name, port in list(waiting.items()):
                with socket.socket() as s:
                    s.settimeout(0.5)
                    if s.connect_ex((host, port)) == 0:
                        del waiting[name]
            if time.monotonic() > deadline:
                raise StartFailed(f"The {', '.join(waiting)} did not answer on {host} within {timeout:g} s.")
            time.sleep(0.2)

    def wait(self):
        """Block until a stop is asked for or a process exits; return the reason as text."""
        while True:
            if self.signals:
                return "stop requested"
            if os.getppid() != self.parent:
                return "the parent process has gone"
            gone = self.first_exited()
            if gone:
                return f"the {gone[0]} stopped (exit status {gone[1]})"
            time.sleep(0.2)

    def stop(self):
        """Stop every process group: SIGTERM, then SIGKILL after ``stop_timeout``; reap them all."""
        for name, proc in self.procs:
            if self.exited(proc) is None:
                self._signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and not self._hurried():
            if all(self.exited(proc) is not None for _name, proc in self.procs):
                break
            time.sleep(0.1)
        for name, proc in self.procs:
            if self.exited(proc) is None:
                print(f"The {name} did not stop on SIGTERM; killing it.", file=self.out, flush=True)
        # Every group, even where the leader has exited: what it started may still run.
        for _name, proc in self.procs:
            self._signal_group(proc, signal.SIGKILL)
        for _name, proc in self.procs:
            proc.wait()

    @staticmethod
    def _signal_group(proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
