"""The README cannot drift from the code: its settings table is conf.DEFAULTS, its
troubleshooting table names every system check, its demo table every variable the demo reads,
and the blocks the executable-README test runs are where that test looks for them."""

import re
from decimal import Decimal
from pathlib import Path

import pytest

from d7sms import conf
from tests import readme_support as readme

ROOT = Path(__file__).resolve().parent.parent


def settings_rows():
    return {readme.code(row[0])[0]: row for row in readme.table(readme.section("Settings"))}


def test_the_settings_table_lists_every_setting_and_no_other():
    documented = set(settings_rows())
    missing, stale = sorted(set(conf.DEFAULTS) - documented), sorted(documented - set(conf.DEFAULTS))
    assert not missing, f"add a row to README.md's Settings table for {missing}"
    assert not stale, f"README.md's Settings table lists settings d7sms/conf.py does not have: {stale}"


@pytest.mark.parametrize("name", sorted(conf.DEFAULTS))
def test_each_documented_default_is_the_real_one(name):
    name_cell, default_cell, meaning = settings_rows()[name]
    [written] = readme.code(default_cell)
    assert eval(written, {"__builtins__": {}}, {"Decimal": Decimal}) == conf.DEFAULTS[name], (
        f"README.md says {name} defaults to {written}; d7sms/conf.py says {conf.DEFAULTS[name]!r}"
    )
    assert len(meaning) > 20, f"say what {name} does"


def check_ids_in_code():
    ids = set()
    for module in ("checks.py", "project_checks.py"):
        ids |= set(re.findall(r'id="(d7sms\.[EW]\d{3})"', (ROOT / "d7sms" / module).read_text()))
    return ids


def test_troubleshooting_explains_every_check():
    rows = readme.table(readme.section("What `manage.py check` says"))
    documented = {readme.code(row[0])[0] for row in rows}
    in_code = check_ids_in_code()
    assert len(in_code) >= 26
    assert not in_code - documented, f"add README.md troubleshooting rows for {sorted(in_code - documented)}"
    assert not documented - in_code, f"README.md explains checks that do not exist: {sorted(documented - in_code)}"
    for row in rows:
        assert len(row) == 3 and all(row), f"each check needs what is wrong and what to do: {row}"


@pytest.mark.parametrize("status", ["pending", "queued", "sending", "unknown", "accepted", "failed"])
def test_troubleshooting_says_why_a_message_is_stuck(status):
    assert f"**`{status}`" in readme.section("Why is my message ...")


def test_the_demo_table_lists_every_variable_the_demo_reads():
    read = set()
    for path in (ROOT / "demo_project").glob("*.py"):
        read |= set(re.findall(r"""environ(?:\.get)?[\[(]\s*["']([A-Z0-9_]+)["']""", path.read_text()))
        read |= set(re.findall(r"""_number\(environ, "([A-Z0-9_]+)\"""", path.read_text()))
    documented = {name for row in readme.table(readme.section("The demo's ports and environment"))
                  for name in readme.code(row[0])}
    read.discard("DJANGO_SETTINGS_MODULE")  # set by the demo for its own processes
    assert {"D7SMS_DEMO_PORT", "D7SMS_SANDBOX_PORT", "D7SMS_REDIS_URL"} <= read
    assert not read - documented, f"add README.md rows for {sorted(read - documented)}"


def test_the_two_set_up_commands_come_first():
    first_block = re.search(r"```sh\n(.*?)```", readme.text(), re.S).group(1)
    assert [line.split()[:2] for line in first_block.splitlines()] == [["make", "demo"], ["make", "test"]]


def test_the_marked_blocks_are_all_there():
    found = {(b.role, b.target) for b in readme.blocks()}
    assert {b.role for b in readme.blocks()} <= readme.ROLES
    assert found == {
        ("shell", "install"), ("append", "mysite/settings.py"), ("append", "mysite/urls.py"), ("shell", "setup"),
        ("shell", "try"), ("file", "mysite/test_sms.py"), ("file", "mysite/test_sms_pytest.py"),
        ("file", "pytest.ini"), ("shell", "test"),
    }
    assert readme.text().count("<!-- readme-test:") == len(found), "a marker is not followed by a code block"


def test_the_settings_snippet_calls_nothing_it_does_not_define():
    """The snippet must work as written: it may use only what it imports and what
    startproject's settings.py defines."""
    snippet = readme.block("append", "mysite/settings.py").text
    assert "env(" not in snippet
    compile(snippet, "settings.py", "exec")


def test_the_linked_files_exist():
    for target in re.findall(r"\]\(((?:docs|tests)/[^)#]+)\)", readme.text()):
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"
