"""Writing enquiries out, as they are read: one row at a time, so memory stays flat however many.

CSV is UTF-8 with the contract's header, and safe to open in a spreadsheet: a cell that begins with
one of the characters a spreadsheet reads as the start of a formula gets a leading apostrophe
(OWASP, CSV injection: https://owasp.org/www-community/attacks/CSV_Injection), so a name typed as
`=HYPERLINK(...)` stays text. JSON is a list of objects with the same keys.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from enquiries_cli.output import json_text
from enquiries_cli.scanning import ENQUIRY_COLUMNS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> str:
    """One CSV cell: the stored value as text (booleans as true/false, missing as empty)."""
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """An enquiry with exactly the export's keys, in order; an attribute it lacks is None."""
    return {column: item.get(column) for column in ENQUIRY_COLUMNS}


def write_csv(items: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """Write the header and one row per item; return the number of rows."""
    # "\r\n" ends rows, as RFC 4180 and spreadsheets expect; line breaks inside a message are quoted.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ENQUIRY_COLUMNS)
    count = 0
    for item in items:
        writer.writerow([spreadsheet_safe(value) for value in export_row(item).values()])
        count += 1
    return count


def write_json(items: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """Write a JSON list, one object a line, without holding the list in memory; return its length."""
    count = 0
    out.write("[")
    for item in items:
        out.write(("," if count else "") + "\n" + json_text(export_row(item), indent=None))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


# Excel on Windows reads a CSV file without a byte order mark in the computer's legacy code page, so
# "Zoë" becomes "ZoÃ«"; a UTF-8 BOM at the start makes Excel (and LibreOffice, which also detects
# it) open the file as UTF-8 with no import dialog
# (https://donatstudios.com/CSV-An-Encoding-Nightmare, https://github.com/payloadcms/payload/pull/14044).
# Only for `--format excel-csv`: other readers may take the BOM as part of the first column's name.
UTF8_BOM = "\ufeff"


def write_excel_csv(items: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """`write_csv`, after a UTF-8 byte order mark."""
    out.write(UTF8_BOM)
    return write_csv(items, out)
