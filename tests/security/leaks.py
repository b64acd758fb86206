"""Scanners for personal identifiers in what the server sends: checksum-valid GB 11643 resident ID
numbers and mainland mobile numbers, in plain text, HTML, JSON, CSV and XLSX bodies.

One regex pass per text finds the candidates; only ID candidates pay for the checksum and date test.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from eqian.core.ids import is_valid_resident_id

# An identifier glued to letters or digits is part of something else (a hex digest, a token, a
# longer number); a mobile right after a dot is the decimal tail of a coordinate or a score.
_CANDIDATES = re.compile(
    r"(?<![0-9A-Za-z])(?P<id>[1-9][0-9]{16}[0-9Xx])(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z.])(?P<mobile>1[3-9][0-9]{9})(?![0-9A-Za-z])"
)
# Cheap pre-filter: most bodies hold no run of 11 digits at all, and then the scan is one search.
_LONG_DIGITS = re.compile(r"[0-9]{11}")

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Hit:
    kind: str  # "resident_id" or "mobile"
    value: str
    context: str  # a few characters either side, masked, so the report itself leaks nothing

    def __str__(self) -> str:
        return f"{self.kind} {self.masked} in …{self.context}…"

    @property
    def masked(self) -> str:
        return self.value[:3] + "*" * (len(self.value) - 7) + self.value[-4:]


def scan_text(text: str) -> list[Hit]:
    """Every unmasked resident ID (valid check digit and birth date) and mobile number in ``text``."""
    if not _LONG_DIGITS.search(text):
        return []
    hits: list[Hit] = []
    for m in _CANDIDATES.finditer(text):
        value = m.group()
        kind = "mobile" if m.lastgroup == "mobile" else "resident_id"
        if kind == "resident_id" and not is_valid_resident_id(value):
            continue
        start, end = m.span()
        masked = value[:3] + "*" * (len(value) - 7) + value[-4:]
        context = (text[max(0, start - 30) : start] + masked + text[end : end + 30]).replace("\n", " ")
        hits.append(Hit(kind, value, context))
    return hits


def xlsx_text(body: bytes) -> str:
    """The text of every cell of every sheet (values, not formulas' results), one cell per line."""
    from openpyxl import load_workbook  # only exports pay for the import

    book = load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    try:
        return "\n".join(
            str(value)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    finally:
        book.close()


def body_text(content_type: str, body: bytes) -> str | None:
    """The text a person or program would read in a response body, or None for opaque bytes
    (images, PDF) that cannot carry typed-out identifiers in a form this scan can see."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == XLSX_TYPE or (ctype == "application/octet-stream" and body[:2] == b"PK"):
        try:
            return xlsx_text(body)
        except (zipfile.BadZipFile, KeyError, OSError):
            return body.decode("utf-8", "replace")
    if ctype.startswith("text/") or ctype.endswith(("json", "xml", "javascript")) or ctype == "":
        return body.decode("utf-8", "replace")
    if ctype.startswith(("image/", "font/")) or ctype == "application/pdf":
        return None
    return body.decode("utf-8", "replace")
