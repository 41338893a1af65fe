"""The Makefile's promises: `make bench` says up front what it needs, and the browser tests'
screenshots stay out of the tracked files unless `make screenshots` asks for them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ensure_wrk_says_clearly_what_happens_without_wrk(tmp_path):
    # A PATH with a shell and `id` but neither wrk nor apt-get: a machine that cannot install it.
    for tool in ("bash", "env", "id"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    result = subprocess.run([str(ROOT / "scripts" / "ensure-wrk")], env={"PATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "wrk is not installed" in result.stdout and "apt-get install wrk" in result.stdout
    assert "bench/loadgen.py" in result.stdout


def test_ensure_wrk_is_quiet_when_wrk_is_there(tmp_path):
    for tool in ("bash", "env", "id"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    (tmp_path / "wrk").write_text("#!/bin/sh\n")
    (tmp_path / "wrk").chmod(0o755)
    result = subprocess.run([str(ROOT / "scripts" / "ensure-wrk")], env={"PATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "")


def dry_run(target):
    result = subprocess.run(["make", "-n", "--no-print-directory", "-o", "install-test", "-o", "browser", target],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_bench_sees_to_wrk_before_any_benchmark():
    lines = dry_run("bench")
    ensure = next(i for i, line in enumerate(lines) if "scripts/ensure-wrk" in line)
    first_bench = next(i for i, line in enumerate(lines) if "bench/run_all.py" in line)
    assert ensure < first_bench


def test_screenshots_go_where_git_ignores_them_unless_asked():
    from tests import test_browser

    default = Path(os.path.relpath(test_browser.ARTIFACTS, ROOT))
    if os.environ.get("D7SMS_SCREENSHOT_DIR"):
        pytest.skip("D7SMS_SCREENSHOT_DIR asks for the screenshots elsewhere on purpose")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(default / "compose.png")], cwd=ROOT)
    assert ignored.returncode == 0, f"{default} is not ignored by git"
    assert any("D7SMS_SCREENSHOT_DIR=docs/screenshots" in line for line in dry_run("screenshots"))
    for name in ("compose", "preview", "sendout", "message"):
        assert (ROOT / "docs" / "screenshots" / f"{name}.png").exists()
