"""`make demo`: migrate, create the demo login, then run the sandbox, a django-q2 cluster and
the dev server side by side until Ctrl-C stops all three.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = os.environ.get("D7SMS_DEMO_HOST", "127.0.0.1")
PORT = int(os.environ.get("D7SMS_DEMO_PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("D7SMS_SANDBOX_PORT", "8099"))
LOGIN = ("admin", "admin")


def manage(*args):
    return [sys.executable, str(ROOT / "manage.py"), *args]


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def prepare():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    os.environ.setdefault("D7SMS_BASE_URL", f"http://{HOST}:{SANDBOX_PORT}")
    os.environ.setdefault("D7SMS_CALLBACK_BASE_URL", f"http://{HOST}:{PORT}")
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


def main():
    for port, what in ((PORT, "dev server"), (SANDBOX_PORT, "sandbox")):
        if not port_free(port):
            sys.exit(f"Port {port} on {HOST} is taken, so the {what} cannot start. Stop what uses it and retry.")
    prepare()
    local_sandbox = os.environ["D7SMS_BASE_URL"] == f"http://{HOST}:{SANDBOX_PORT}"
    commands = []
    if local_sandbox:
        commands.append(manage("d7sms_sandbox", "--host", HOST, "--port", str(SANDBOX_PORT), "--user", "sandbox:sandbox:1000"))
    commands.append(manage("qcluster"))
    commands.append(manage("runserver", f"{HOST}:{PORT}", "--noreload"))
    # Own sessions, so the terminal's Ctrl-C reaches only us and we stop them in order; a
    # SIGTERM or hang-up to us is treated as Ctrl-C so nothing is left running.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    procs = [subprocess.Popen(cmd, start_new_session=True) for cmd in commands]
    time.sleep(2)
    print(
        "\n"
        f"  d7sms demo is running: http://{HOST}:{PORT}/admin/\n"
        f"  Log in as {LOGIN[0]} / {LOGIN[1]}\n"
        + (f"  Sandbox (a local D7 API): http://{HOST}:{SANDBOX_PORT}/_sandbox/messages\n" if local_sandbox else "")
        + "  Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("A demo process stopped; stopping the rest.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
