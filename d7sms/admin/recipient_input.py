"""Reading a pasted recipient list in one pass, and what uploads share with it (the list's
errors, the header rule, a CSV reader whose errors name the line; uploads themselves are read
by :mod:`d7sms.admin.spreadsheets`).

Lists of 100,000 lines are common, so pasted text is walked line by line in place. Only the
normalised valid numbers are kept (in one dict, which is both the order and the duplicate
check), plus the first :data:`SHOWN_PROBLEMS` invalid entries for display.
"""

import csv
import re
from dataclasses import dataclass, field

from d7sms.recipients import InvalidNumber, normalise

SHOWN_PROBLEMS = 100
_PASTE_SEPARATORS = re.compile(r"[,;\t]")
_DIGIT = re.compile(r"\d")


class ListError(ValueError):
    """The list as a whole cannot be read (e.g. a CSV column that does not exist); ``field``
    names the form field the error belongs to."""

    def __init__(self, text, field="column"):
        super().__init__(text)
        self.field = field


@dataclass
class Collected:
    """The outcome of reading a list.

    ``numbers`` maps each valid E.164 number to None, in first-seen order; ``problems``
    holds up to :data:`SHOWN_PROBLEMS` ``(line, value, reason)`` triples; ``invalid`` counts
    them all. ``header`` is the header row that was skipped, if any.
    """

    numbers: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    invalid: int = 0
    duplicates: int = 0
    header: str = ""
    column: str = ""

    def add(self, line, value, region):
        value = value.strip()
        if not value:
            return
        try:
            number = normalise(value, region)
        except InvalidNumber as exc:
            self.invalid += 1
            if len(self.problems) < SHOWN_PROBLEMS:
                self.problems.append((line, value[:60], str(exc)))
            return
        if number in self.numbers:
            self.duplicates += 1
        else:
            self.numbers[number] = None


def _lines(text):
    """Yield ``(line_number, line)`` without splitting ``text`` into a list first."""
    start, number, size = 0, 1, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        yield number, text[start:end].rstrip("\r")
        start, number = end + 1, number + 1


def is_header(values):
    """A first row is a header when none of its cells holds a digit (e.g. ``Name;Phone``)."""
    cells = [v for v in values if v.strip()]
    return bool(cells) and not any(_DIGIT.search(v) for v in cells)


def read_pasted(text, region):
    """Read numbers pasted one per line, or separated by commas, semicolons or tabs."""
    collected = Collected()
    first = True
    for line_number, line in _lines(text):
        values = _PASTE_SEPARATORS.split(line)
        if first and line.strip():
            first = False
            if is_header(values):
                collected.header = line.strip()[:100]
                continue
        for value in values:
            collected.add(line_number, value, region)
    return collected


class CheckedReader:
    """A csv reader whose errors (a cell longer than ``csv.field_size_limit()``, a NUL byte...)
    become a :class:`ListError` naming the line: a file of phone numbers has no such cell."""

    def __init__(self, reader):
        self.reader = reader

    @property
    def line_num(self):
        return self.reader.line_num

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self.reader)
        except csv.Error as exc:
            detail = str(exc)
            if "field larger than field limit" in detail:
                detail = f"a cell is longer than {csv.field_size_limit():,} characters"
            raise ListError(
                f"The file cannot be read as a list of numbers: line {self.reader.line_num}: {detail}.",
                field="upload",
            ) from None
