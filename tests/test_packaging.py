"""`pip install .` must give an app that works: templates, static files and migrations included."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_templates_static_and_migrations(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [wheel] = tmp_path.glob("d7sms-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.joinpath("d7sms").rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and path.suffix in {".html", ".js", ".css"} or "/migrations/0" in relative:
            assert relative in names, f"{relative} is missing from the wheel"
    assert "d7sms/sandbox/__main__.py" in names
    assert not any(name.startswith(("tests/", "demo_project/", "bench/")) for name in names)
