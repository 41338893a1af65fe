"""Run the whole suite: the import contracts, then the tests once on SQLite with the ORM broker
and again on PostgreSQL with Redis.

The second pass is skipped with one clear line where PostgreSQL or Redis is not reachable.
Extra arguments are passed to pytest.
"""

import os
import socket
import subprocess
import sys


def reachable(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def run(label, env_extra, args):
    print(f"\n=== {label} ===", flush=True)
    env = {**os.environ, **env_extra}
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=env)


def lint_imports():
    print("\n=== Import contracts (pyproject.toml) ===", flush=True)
    linter = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    return subprocess.call([linter, "--no-cache"])


def main(args):
    failed = lint_imports()
    failed |= run("SQLite, django-q2 ORM broker", {"D7SMS_TEST_DATABASE": "sqlite"}, args)
    missing = [name for name, port in (("PostgreSQL", 5432), ("Redis", 6379)) if not reachable("127.0.0.1", port)]
    if missing:
        print(f"\nSKIPPED: the PostgreSQL + Redis pass ({' and '.join(missing)} not reachable on 127.0.0.1).")
    else:
        failed |= run("PostgreSQL, django-q2 Redis broker", {"D7SMS_TEST_DATABASE": "postgres"}, args)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
