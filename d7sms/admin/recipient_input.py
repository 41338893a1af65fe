"""Reading a pasted or uploaded recipient list in one pass.

Lists of 100,000 lines are common, so input is streamed: pasted text is walked line by
line in place and uploads are read through ``csv`` over a text wrapper of the file. Only
the normalised valid numbers are kept (in one dict, which is both the order and the
duplicate check), plus the first :data:`SHOWN_PROBLEMS` invalid entries for display.
"""

import csv
import io
import re
from dataclasses import dataclass, field

from d7sms.recipients import InvalidNumber, normalise

SHOWN_PROBLEMS = 100
_PASTE_SEPARATORS = re.compile(r"[,;\t]")
_DIGIT = re.compile(r"\d")
_SNIFF_BYTES = 16384
_SAMPLE_ROWS = 20


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


def _is_header(values):
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
            if _is_header(values):
                collected.header = line.strip()[:100]
                continue
        for value in values:
            collected.add(line_number, value, region)
    return collected


def read_csv(upload, column, region):
    """Read one column of an uploaded CSV file.

    ``column`` is a 1-based number, a header name, or empty to pick the column that holds
    the most valid numbers in the first rows. The delimiter is detected; a first row
    without digits is taken as the header.
    """
    upload.seek(0)
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", errors="replace", newline="")
    try:
        return _read_rows(text, column.strip(), region)
    finally:
        text.detach()  # leave the upload open for Django to clean up


def _read_rows(text, column, region):
    sample = text.read(_SNIFF_BYTES)
    text.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or nothing to tell delimiters apart
    reader = _checked(csv.reader(text, dialect))
    collected = Collected()
    head = []
    for row in reader:
        head.append((reader.line_num, row))
        if len(head) >= _SAMPLE_ROWS:
            break
    if not head:
        return collected
    header = head[0][1] if _is_header(head[0][1]) else None
    if header is not None:
        collected.header = dialect.delimiter.join(header)[:100]
        head = head[1:]
    index = _column_index(column, header, [row for _n, row in head], region)
    collected.column = header[index] if header and index < len(header) else str(index + 1)

    def rows():
        yield from head
        for row in reader:
            yield reader.line_num, row

    for line_number, row in rows():
        if not any(cell.strip() for cell in row):
            continue
        if index >= len(row):
            collected.invalid += 1
            if len(collected.problems) < SHOWN_PROBLEMS:
                collected.problems.append((line_number, dialect.delimiter.join(row)[:60], f"no column {index + 1}"))
            continue
        collected.add(line_number, row[index], region)
    return collected


class _checked:
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


def _column_index(column, header, sample, region):
    if column.isdigit():
        index = int(column) - 1
        if index < 0:
            raise ListError("Columns are numbered from 1.")
        return index
    if column:
        names = [h.strip().casefold() for h in header or ()]
        if column.casefold() in names:
            return names.index(column.casefold())
        if header:
            raise ListError(f"The file has no column named {column!r}; its columns are: {', '.join(header)}.")
        raise ListError(f"The file has no header row, so name the column by number instead of {column!r}.")
    width = max((len(row) for row in sample), default=1)
    scores = [0] * width
    for row in sample:
        for i, cell in enumerate(row):
            try:
                normalise(cell, region)
            except InvalidNumber:
                continue
            scores[i] += 1
    # The leftmost of the best columns; column 1 when none holds a number.
    return scores.index(max(scores)) if width else 0
