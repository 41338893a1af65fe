"""`pip install` of the wheel must give an app that works: templates, static files and migrations
included, the pytest plugin registered, nothing of the repository's own tooling."""

import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_templates_static_and_migrations(built_wheel):
    names = set(zipfile.ZipFile(built_wheel).namelist())
    for path in ROOT.joinpath("d7sms").rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and path.suffix in {".html", ".js", ".css"} or "/migrations/0" in relative:
            assert relative in names, f"{relative} is missing from the wheel"
    assert "d7sms/sandbox/__main__.py" in names
    assert not any(name.startswith(("tests/", "demo_project/", "bench/", "docs/")) for name in names)


def test_wheel_registers_the_pytest_plugin(built_wheel):
    wheel = zipfile.ZipFile(built_wheel)
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[pytest11]" in text and "d7sms = d7sms.pytest_plugin" in text

