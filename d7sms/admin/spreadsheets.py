"""Reading an uploaded recipient list, CSV or Excel (.xlsx), as named columns and rows of text.

CSV is streamed through ``csv`` over a text wrapper of the file; .xlsx is parsed by calamine
(``python-calamine``, native code: a pure-Python parser spends seconds on a large sheet), which
keeps the cells outside Python and hands them over a row at a time. Every cell becomes text as
a person reads it in the sheet (``12.0`` reads ``12``, a date ``2025-05-01``; a formula its last
computed value); an empty cell, and a formula whose value is an error, is ``""``.
"""

import csv
import datetime
import io
import re
import zipfile
from dataclasses import dataclass

from d7sms.admin.recipient_input import CheckedReader, ListError, is_header
from d7sms.recipients import InvalidNumber, normalise

_SNIFF_BYTES = 16384
_SAMPLE_ROWS = 20
_XLSX_MAGIC = b"PK\x03\x04"
_ACTIVE_TAB = re.compile(rb"<(?:\w+:)?workbookView\b[^>]*\bactiveTab=\"(\d+)\"")


@dataclass
class Table:
    """A list's ``columns`` (names, unique) and ``rows``: an iterator of ``(line, cells)``,
    ``cells`` as long as ``columns``. ``header`` is the header row as read ("" when the file
    has none, and the columns are then called "column 1", "column 2"...)."""

    columns: list
    rows: object
    header: str = ""


def read_table(upload, region=None):
    """Read ``upload`` (a Django UploadedFile) as a :class:`Table`; .xlsx by its content, else CSV."""
    upload.seek(0)
    head = upload.read(4)
    upload.seek(0)
    if head == _XLSX_MAGIC:
        return _xlsx(upload, region)
    if head[:2] == b"\xd0\xcf":
        raise ListError("This is an old Excel file (.xls): save it as .xlsx or CSV and upload it again.")
    return _csv(upload, region)


def _csv(upload, region):
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", errors="replace", newline="")
    sample = text.read(_SNIFF_BYTES)
    text.seek(0)
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or nothing to tell delimiters apart
    # Only the delimiter is taken from the sniffer: it can take an apostrophe ("O'Brien",
    # "'=1+1" as exports write formulas) for a quote character, and a CSV quotes with ".
    reader = CheckedReader(csv.reader(text, dialect, quotechar='"', doublequote=True))

    def rows():
        try:
            for row in reader:
                yield reader.line_num, row
        finally:
            text.detach()  # leave the upload open for Django to clean up

    return _named(rows(), region, dialect.delimiter)


def _xlsx(upload, region):
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        index = _active_sheet(upload)
        upload.seek(0)
        book = CalamineWorkbook.from_filelike(upload)
        sheet = book.get_sheet_by_index(index)
    except (CalamineError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ListError(f"This Excel file cannot be read ({type(exc).__name__}); save it as .xlsx again.") from None
    # Rows come from the first row of the sheet, cells from the first column that holds any:
    # the columns before it are put back, so that the sheet's row numbers and columns hold.
    before = [""] * (sheet.start[1] if sheet.start else 0)

    def rows():
        try:
            for line, values in enumerate(sheet.iter_rows(), start=1):
                yield line, before + [_cell_text(v) for v in values]
        finally:
            book.close()

    return _named(rows(), region, ",")


def _active_sheet(upload):
    """The index of the sheet the workbook opens at (Excel's "active" sheet), 0 if it names none."""
    with zipfile.ZipFile(upload) as archive:
        workbook = archive.read("xl/workbook.xml")
    found = _ACTIVE_TAB.search(workbook)
    return int(found.group(1)) if found else 0


def _cell_text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat(" ", "minutes")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _named(rows, region, delimiter):
    """Name the columns from the first non-empty row when it is a header, and pad every row."""
    rows = iter(rows)
    sample = []
    for line, cells in rows:
        if any(c.strip() for c in cells):
            sample.append((line, [c.strip() for c in cells]))
            if len(sample) >= _SAMPLE_ROWS:
                break
    if not sample:
        raise ListError("The file holds no rows.")
    first = sample[0][1]
    header = _looks_like_header(first, [cells for _l, cells in sample[1:]], region)
    width = max(len(cells) for _l, cells in sample)
    if header:
        names = _unique([c or f"column {i + 1}" for i, c in enumerate(first)] + [
            f"column {i + 1}" for i in range(len(first), width)
        ])
        sample = sample[1:]
    else:
        names = [f"column {i + 1}" for i in range(width)]

    def padded():
        size = len(names)
        for line, cells in sample:
            yield line, _fit(cells, size)
        for line, cells in rows:
            yield line, _fit([c.strip() for c in cells], size)

    return Table(names, padded(), delimiter.join(first)[:100] if header else "")


def _fit(cells, size):
    if len(cells) < size:
        return cells + [""] * (size - len(cells))
    # Cells beyond the columns seen in the first rows have no name to be used by.
    return cells[:size]


def _looks_like_header(first, rest, region):
    """A first row is a header when no cell holds a digit, or when none of its cells is a
    phone number while the rows after it hold some (e.g. ``name,phone,address line 1``)."""
    if is_header(first):
        return True
    if any(is_number(c, region) for c in first):
        return False
    return any(is_number(c, region) for cells in rest for c in cells)


def is_number(cell, region):
    """True when ``cell`` holds a valid phone number."""
    if not cell or not any(ch.isdigit() for ch in cell):
        return False
    try:
        normalise(cell, region)
    except InvalidNumber:
        return False
    return True


def _unique(names):
    seen, out = {}, []
    for name in names:
        n = seen.get(name.casefold(), 0) + 1
        seen[name.casefold()] = n
        out.append(name if n == 1 else f"{name} ({n})")
    return out
