"""Reading .xlsx uploads (d7sms/admin/spreadsheets.py): every cell reads as the text a person sees
in the sheet, as openpyxl (the reader before calamine) gave it, with the sheet's own row numbers."""

import datetime
import io
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from d7sms.admin.recipient_input import ListError
from d7sms.admin.spreadsheets import _cell_text, read_table

# Formulas as Excel saves them, with the value it computed last (openpyxl writes none).
CACHED = {
    b'<c r="C7"><f>1+1</f><v /></c>': b'<c r="C7"><f>1+1</f><v>2</v></c>',
    b'<c r="E7"><f>B4&amp;"!"</f><v /></c>': b'<c r="E7" t="str"><f>B4&amp;"!"</f><v>  Ada !</v></c>',
    b'<c r="B10"><f>NA()</f><v /></c>': b'<c r="B10" t="e"><f>NA()</f><v>#N/A</v></c>',
}


def tricky_workbook(active=0):
    """An .xlsx whose cells are the hard ones, starting at B3 with empty rows and columns around."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([])
    sheet.append([])
    sheet["B3"], sheet["C3"], sheet["D3"], sheet["E3"] = "name", "phone", "when", "amount"
    sheet["B4"], sheet["C4"], sheet["D4"], sheet["E4"] = "  Ada ", 447700900123, datetime.date(2025, 5, 1), 12.5
    # Row 5 is empty.
    sheet["B6"], sheet["C6"], sheet["E6"] = "Bob", 447700900124.0, 3.0
    sheet["D6"] = datetime.datetime(2025, 5, 1, 13, 45, 30)
    sheet["B7"], sheet["C7"], sheet["D7"], sheet["E7"] = True, "=1+1", datetime.time(9, 30), '=B4&"!"'
    sheet["B8"], sheet["C8"], sheet["D8"], sheet["E8"] = 10**17, -0.0, datetime.timedelta(hours=30), 1e-7
    sheet["F9"] = "far"
    sheet["B10"], sheet["C10"], sheet["E10"] = "=NA()", 1234567890123456789, 0.5
    sheet["E10"].number_format = "0%"
    sheet["D11"], sheet["E11"] = 45000, False  # a date typed as its serial number, formatted as a date
    sheet["D11"].number_format = "yyyy-mm-dd"
    sheet["D12"], sheet["E12"] = 45000.75, 0.1 + 0.2
    sheet["D12"].number_format = "yyyy-mm-dd hh:mm"
    other = book.create_sheet("Other")
    other["A1"], other["A2"] = "mobile", 447700900999
    book.active = active
    saved = io.BytesIO()
    book.save(saved)
    source, out = zipfile.ZipFile(saved), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                for plain, cached in CACHED.items():
                    assert plain in data
                    data = data.replace(plain, cached)
            target.writestr(item, data)
    return out.getvalue()


def upload(data, name="tricky.xlsx"):
    return SimpleUploadedFile(name, data, content_type="application/vnd.ms-excel")


def openpyxl_rows(data):
    """The rows as the openpyxl reader gave them: read-only, cached values, the active sheet."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    rows = [[_cell_text(v) for v in values] for values in book.active.iter_rows(values_only=True)]
    book.close()
    return rows


def test_tricky_cells_read_as_a_person_sees_them():
    table = read_table(upload(tricky_workbook()))
    # Empty rows before the header and among the first rows are left out; numbering holds.
    assert table.header == ",name,phone,when,amount,"
    assert table.columns == ["column 1", "name", "phone", "when", "amount", "column 6"]
    assert list(table.rows) == [
        (4, ["", "Ada", "447700900123", "2025-05-01", "12.5", ""]),
        (6, ["", "Bob", "447700900124", "2025-05-01 13:45", "3", ""]),
        (7, ["", "TRUE", "2", "09:30:00", "Ada !", ""]),
        (8, ["", "100000000000000000", "0", "1 day, 6:00:00", "1e-07", ""]),
        (9, ["", "", "", "", "", "far"]),
        # An error computed by a formula reads as empty (openpyxl gave its code, "#N/A").
        (10, ["", "", "1234567890123457024", "", "0.5", ""]),
        (11, ["", "", "", "2023-03-15", "FALSE", ""]),
        (12, ["", "", "", "2023-03-15 18:00", "0.3", ""]),
    ]


def test_every_cell_reads_as_openpyxl_read_it():
    data = tricky_workbook()
    table = read_table(upload(data))
    expected = openpyxl_rows(data)
    got = {line: cells for line, cells in table.rows}
    for line, cells in got.items():
        want = [c.strip() for c in expected[line - 1]] + [""] * (len(cells) - len(expected[line - 1]))
        if line == 10:
            assert want[1] == "#N/A"
            want[1] = ""
        assert cells == want, f"line {line}"


def test_the_sheet_the_workbook_opens_at_is_read():
    table = read_table(upload(tricky_workbook(active=1)))
    assert table.columns == ["mobile"] and list(table.rows) == [(2, ["447700900999"])]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"PK\x03\x04" + b"\0" * 60, "BadZipFile"),
        (None, "KeyError"),  # a zip, but not a workbook
    ],
)
def test_a_file_that_is_no_workbook_is_refused_by_name(data, problem):
    if data is None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("readme.txt", "hello")
        data = out.getvalue()
    with pytest.raises(ListError) as caught:
        read_table(upload(data))
    assert str(caught.value) == f"This Excel file cannot be read ({problem}); save it as .xlsx again."
