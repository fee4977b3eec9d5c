"""CSV: each data row becomes one block that names its values by the header row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from appliance.errors import ExtractError
from appliance.ingest.extract.text import decode
from appliance.ingest.types import Block, Extracted

# The sniffer's regular expressions are slow on long input; a few KiB of rows is plenty.
_SNIFF_CHARS = 8 * 1024
_DELIMITERS = ",;\t|"


def read(data: bytes) -> Extracted:
    """Rows as "name: value; other: value", skipping empty cells; the first row names them."""
    text = decode(data)
    try:
        return Extracted(list(_blocks(text)))
    except csv.Error as exc:  # a field past csv.field_size_limit(), most often an open quote
        raise ExtractError(f"not a readable CSV ({exc}); is a quote left open?") from exc


def _blocks(text: str) -> Iterator[Block]:
    rows = _rows(text)
    header = next(rows, [])
    for row in rows:
        yield Block(_describe(header, row))


def _rows(text: str) -> Iterator[list[str]]:
    reader = _reader(io.StringIO(text, newline=""), text[:_SNIFF_CHARS])
    return (row for row in reader if any(cell.strip() for cell in row))


def _reader(stream: io.StringIO, sample: str) -> Iterator[list[str]]:
    sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
    try:
        return csv.reader(stream, csv.Sniffer().sniff(sample, delimiters=_DELIMITERS))
    except csv.Error:  # ragged rows, or one column: go by the header line
        header = sample.split("\n", 1)[0]
        return csv.reader(stream, delimiter=max(_DELIMITERS, key=header.count))


def _describe(header: list[str], row: list[str]) -> str:
    names = [*header, *[""] * (len(row) - len(header))]
    return "; ".join(
        f"{name.strip() or f'column {number}'}: {value.strip()}"
        for number, (name, value) in enumerate(zip(names, row, strict=False), start=1)
        if value.strip()
    )
