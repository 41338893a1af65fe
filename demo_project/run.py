"""`make demo`: migrate, create the demo login, then run the sandbox, a django-q2 cluster and
the dev server side by side until Ctrl-C (or SIGTERM, or a hang-up) stops all three.

Ports and addresses come from the environment (the README lists every variable):
D7SMS_DEMO_HOST (127.0.0.1), D7SMS_DEMO_PORT (8000, the dev server), D7SMS_SANDBOX_PORT (8099),
D7SMS_DEMO_STOP_TIMEOUT (10 s before a process that ignores SIGTERM is killed).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

from demo_project.supervise import StartFailed, Supervisor

ROOT = Path(__file__).resolve().parent.parent
LOGIN = ("admin", "admin")


class Config:
    """The demo's addresses, read from the environment once."""

    def __init__(self, environ):
        self.host = environ.get("D7SMS_DEMO_HOST", "127.0.0.1")
        self.port = _number(environ, "D7SMS_DEMO_PORT", "8000", int)
        self.sandbox_port = _number(environ, "D7SMS_SANDBOX_PORT", "8099", int)
        self.stop_timeout = _number(environ, "D7SMS_DEMO_STOP_TIMEOUT", "10", float)
        self.base_url = environ.get("D7SMS_BASE_URL", f"http://{self.host}:{self.sandbox_port}")
        self.local_sandbox = "D7SMS_BASE_URL" not in environ

    def ports(self):
        """``(variable, port, what)`` for each port the demo listens on."""
        ports = [("D7SMS_DEMO_PORT", self.port, "dev server")]
        if self.local_sandbox:
            ports.append(("D7SMS_SANDBOX_PORT", self.sandbox_port, "sandbox"))
        return ports


def sandbox_price(environ=os.environ):
    """The sandbox's ``--price-per-part`` option: the PRICE_PER_PART the demo's settings show."""
    price = environ.get("D7SMS_PRICE_PER_PART")
    return ["--price-per-part", price] if price else []


def _number(environ, name, default, kind):
    value = environ.get(name, default)
    try:
        return kind(value)
    except ValueError:
        sys.exit(f"{name} must be a number, not {value!r}.")


def bind_problem(host, port):
    """Why ``port`` on ``host`` cannot be listened on (e.g. "Address already in use"), or None."""
    with socket.socket() as s:
        # As the servers do, so a port left in TIME_WAIT by the last run counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def free_port_near(host, port, taken=()):
    """A port at or above ``port + 1`` that can be listened on now, for the error's suggestion."""
    for candidate in range(port + 1, min(port + 200, 65536)):
        if candidate not in taken and bind_problem(host, candidate) is None:
            return candidate
    return None


def port_errors(config):
    """One line per port that cannot be used, naming the variable that moves it."""
    errors = []
    taken = {port for _var, port, _what in config.ports()}
    if len(taken) < len(config.ports()):
        errors.append(f"D7SMS_DEMO_PORT and D7SMS_SANDBOX_PORT are both {config.port}: give them different ports.")
    for variable, port, what in config.ports():
        problem = bind_problem(config.host, port)
        if problem:
            other = free_port_near(config.host, port, taken)
            suggestion = f", e.g. `{variable}={other} make demo`" if other else ""
            errors.append(
                f"Port {port} on {config.host} cannot be used for the {what} ({problem}): "
                f"set {variable} to a free port{suggestion}."
            )
    return errors


def manage(*args):
    return [sys.executable, str(ROOT / "manage.py"), *args]


def prepare(config):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    os.environ.setdefault("D7SMS_BASE_URL", config.base_url)
    os.environ.setdefault("D7SMS_CALLBACK_BASE_URL", f"http://{config.host}:{config.port}")
    subprocess.run(manage("migrate", "--no-input", "-v", "0"), check=True)
    subprocess.run(manage("createcachetable"), check=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    User = get_user_model()
    if not User.objects.filter(username=LOGIN[0]).exists():
        User.objects.create_superuser(LOGIN[0], "admin@example.com", LOGIN[1])
    subprocess.run(manage("d7sms_setup"), check=True)


def banner(config):
    lines = [
        f"  d7sms demo is running: http://{config.host}:{config.port}/admin/",
        f"  Log in as {LOGIN[0]} / {LOGIN[1]}",
    ]
    if config.local_sandbox:
        lines.append(f"  Sandbox (a local D7 API): http://{config.host}:{config.sandbox_port}/_sandbox/messages")
    lines.append("  Ctrl-C (or kill) stops everything.")
    return "\n" + "\n".join(lines) + "\n"


def main():
    config = Config(os.environ)
    errors = port_errors(config)
    if errors:
        sys.exit("The demo cannot start:\n  " + "\n  ".join(errors))
    supervisor = Supervisor(stop_timeout=config.stop_timeout)
    supervisor.install_handlers()
    try:
        prepare(config)
        if supervisor.stop_requested():
            return 0
        if config.local_sandbox:
            supervisor.start("sandbox", manage(
                "d7sms_sandbox", "--host", config.host, "--port", str(config.sandbox_port),
                "--user", "sandbox:sandbox:1000", *sandbox_price(),
            ))
        supervisor.start("django-q2 cluster", manage("qcluster"))
        supervisor.start("dev server", manage("runserver", f"{config.host}:{config.port}", "--noreload"))
        supervisor.wait_ready({what: port for _var, port, what in config.ports()}, config.host)
        print(banner(config), flush=True)
        reason = supervisor.wait()
        print(f"Stopping the demo: {reason}.", file=sys.stderr, flush=True)
        return 0 if reason == "stop requested" else 1
    except KeyboardInterrupt:
        return 0
    except (StartFailed, subprocess.CalledProcessError) as exc:
        if supervisor.stop_requested():
            return 0  # e.g. Ctrl-C reached migrate too
        what = f"{' '.join(exc.cmd[2:4])} failed" if isinstance(exc, subprocess.CalledProcessError) else exc
        print(f"The demo did not start: {what}", file=sys.stderr, flush=True)
        return 1
    finally:
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
