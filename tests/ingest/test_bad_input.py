"""Every bad file gives a one-line error or row-level quarantine, never a traceback or damage."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kequn.ingest.models import QuarantinedRow
from tests.ingest.conftest import dump_state

pytestmark = pytest.mark.django_db

GOOD = "email,name\nkeep@x.cn,Keep\n"

FILE_ERRORS = {
    "latin1.csv": ("email,name\nj@x.cn,Jos\xe9,\xe9t\xe9\n".encode("latin-1"), "UTF-8"),
    "dup_headers.csv": (b"email,name,email\na@x.cn,A,b@x.cn\n", "email"),
    "no_id_column.csv": (b"name,city\nA,Beijing\n", "email / phone"),
    "empty.csv": (b"", "empty"),
    "binary.csv": (bytes(range(256)) * 40, "binary"),
    "zip.csv": (b"PK\x03\x04" + b"\x00" * 200, "Excel"),
    "array.json": (b'[{"email": "a@x.cn"}]', "JSON lines"),
    "broken.xlsx": (b"not really a workbook", ".xlsx"),
}


@pytest.mark.parametrize("name", sorted(FILE_ERRORS))
def test_bad_file_gives_one_line_error_and_leaves_data_alone(name, write):
    call_command("import", "customers", str(write("good.csv", GOOD)), "--json", stdout=StringIO())
    before = dump_state()
    content, hint = FILE_ERRORS[name]
    with pytest.raises(CommandError) as exc:
        call_command("import", "customers", str(write(name, content)), "--json", stdout=StringIO())
    message = str(exc.value)
    assert "\n" not in message and name in message
    assert hint in message
    assert dump_state() == before


def _import(path) -> dict:
    out = StringIO()
    call_command("import", "customers", str(path), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_row_level_problems_are_quarantined_with_reasons(write):
    huge = "x" * (10 * 1024 * 1024)
    text = (
        "email,name,birthday\n"
        "ok@x.cn,Ok,1990-01-02\n"
        "d@x.cn,Date,32/13/1990\n"
        f"h@x.cn,{huge},\n"
        ",No Id,\n"
        "e@x.cn,Extra,1990-01-01,surplus\n"
    )
    summary = _import(write("rows.csv", text))
    assert summary["inserted"] == 1
    assert summary["reasons"] == {
        "invalid_date": 1, "too_long": 1, "missing_identifier": 1, "column_count": 1,
    }  # fmt: skip
    long_row = QuarantinedRow.objects.get(reason="too_long")
    assert long_row.row_number == 4 and len(long_row.values["name"]) < 2000
    date_row = QuarantinedRow.objects.get(reason="invalid_date")
    assert date_row.field == "birthday" and "32/13/1990" in date_row.message


def test_missing_file_and_bad_kind(tmp_path):
    with pytest.raises(CommandError, match=r"nope\.csv"):
        call_command("import", "customers", str(tmp_path / "nope.csv"))
    with pytest.raises(CommandError):
        call_command("import", "shoes", str(tmp_path / "nope.csv"))
