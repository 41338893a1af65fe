"""Read README.md as the tests need it: its sections, its tables and its marked code blocks.

A code block the tests run is marked by an HTML comment on the line before its fence, which
GitHub does not show: ``<!-- readme-test: ROLE [TARGET] -->``, where ROLE is

- ``shell NAME``: commands, one per line, run in the project folder;
- ``append PATH``: Python added to the end of the file PATH of the project;
- ``file PATH``: the whole content of a new file PATH of the project.
"""

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_MARKED = re.compile(r"^<!-- readme-test: (\w+) (\S+) -->\n```[\w-]*\n(.*?)^```$", re.M | re.S)
ROLES = {"shell", "append", "file"}


@dataclass
class Block:
    role: str
    target: str
    text: str


def text():
    return README.read_text()


def blocks():
    """The marked code blocks, in the order they appear."""
    return [Block(role, target, body) for role, target, body in _MARKED.findall(text())]


def block(role, target):
    """The one marked block with this role and target."""
    [found] = [b for b in blocks() if (b.role, b.target) == (role, target)]
    return found


def section(title):
    """The text of the section headed ``title`` (any level), up to the next heading of its level or above."""
    lines = text().splitlines()
    for i, line in enumerate(lines):
        level = len(line) - len(line.lstrip("#"))
        if level and line[level:].strip() == title:
            end = next(
                (j for j in range(i + 1, len(lines)) if 0 < len(lines[j]) - len(lines[j].lstrip("#")) <= level),
                len(lines),
            )
            return "\n".join(lines[i + 1 : end])
    raise AssertionError(f"README.md has no section {title!r}")


def table(section_text):
    """The rows of the first Markdown table in ``section_text``, as lists of stripped cells."""
    rows = [line for line in section_text.splitlines() if line.startswith("|")]
    # Cells are split on "|" not escaped as "\|"; the header and its rule are left out.
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def code(cell):
    """The text inside the backticks of a table cell: "`A`, `B`" gives ["A", "B"]."""
    return re.findall(r"`([^`]*)`", cell)
