"""Files the package writes: complete or absent, JSON and CSV only.

Every file is written under a temporary name and renamed into place, so an interruption or
an unserialisable value never leaves a half-written settings file, report or chunk behind.
`TableReport` is the shared writer of the audit's and the conformer-sensitivity reports.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TableReport",
    "atomic",
    "columns_of",
    "csv_text",
    "dumps_readable",
    "numbers_back",
    "read_json",
    "write_json",
    "write_tables",
    "write_text",
]


@contextlib.contextmanager
def atomic(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``path + ".tmp"`` for writing; rename it to ``path`` only if the block succeeds."""
    temporary = os.fspath(path) + ".tmp"
    try:
        with open(temporary, mode) as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path: str | os.PathLike, data: Any, **options: Any) -> None:
    """Write ``data`` as JSON, indented unless ``options`` say otherwise (they go to
    `json.dumps`).

    Serialised before the file is opened: a value JSON cannot hold fails with nothing
    written.
    """
    write_text(path, json.dumps(data, **{"indent": 2, **options}))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` whole (`atomic`): made before the file is opened, so a
    failure to make it leaves nothing behind."""
    with atomic(path) as handle:
        handle.write(text)


def dumps_readable(data: Any, default: Optional[Callable[[Any], Any]] = None) -> str:
    """JSON text of ``data``, indented by two spaces except that a list of plain values
    (numbers, strings, booleans, null: judged by its first item) stays on one line.

    Standard JSON, which has no NaN or infinity (JavaScript's ``JSON.parse`` refuses
    Python's ``NaN`` tokens): NaN is written as ``null``, infinities as the strings ``"inf"``
    and ``"-inf"`` (`numbers_back` reads them back).

    A report's columns of 100,000s of values are then written by `json`'s C encoder, which
    ``indent`` turns off (3x slower, and a value per line), while its settings and summary
    stay readable.

    Examples
    --------
    >>> print(dumps_readable({"n": 2, "rows": [{"id": "a"}], "values": [1.5, None]}))
    {
      "n": 2,
      "rows": [
        {
          "id": "a"
        }
      ],
      "values": [1.5, null]
    }
    >>> dumps_readable([float("nan"), float("inf"), 2.0])
    '[null, "inf", 2.0]'
    """
    return _readable(data, "", default)


def _readable(data: Any, indent: str, default: Optional[Callable[[Any], Any]]) -> str:
    inner = indent + "  "
    if isinstance(data, dict) and data:
        items = (
            f"{inner}{json.dumps(str(k))}: {_readable(v, inner, default)}" for k, v in data.items()
        )
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    # Lists are judged by their first item: a report's lists are of one kind, and testing
    # every value of a 500,000-value column in Python would cost as much as writing it.
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], (dict, list, tuple)):
        items = (inner + _readable(v, inner, default) for v in data)
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    try:  # the C encoder's speed for the usual, finite data
        return json.dumps(data, default=default, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), default=default, allow_nan=False)


def _finite(value: Any) -> Any:
    """``value`` with NaN as None and infinities as ``"inf"`` / ``"-inf"``, at any depth."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        number = float(value)  # NumPy's floats too
        if not math.isfinite(number):
            return None if math.isnan(number) else ("inf" if number > 0 else "-inf")
        return value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def numbers_back(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table`` with ``columns`` as floats again, as `dumps_readable` wrote them (null: NaN,
    ``"inf"``: infinity)."""
    import pandas as pd

    for name in columns:
        table[name] = pd.to_numeric(table[name])
    return table


def columns_of(table: pd.DataFrame) -> dict[str, list]:
    """A table as JSON data: one list of values per column (``pd.DataFrame`` reads it back).

    Columns rather than a record per row: a tenth of the time to build, half the text.
    Non-finite floats are already in `dumps_readable`'s form, found by NumPy: its fallback
    would visit every value of the column in Python.
    """
    import numpy as np

    out = {}
    for name in table.columns:
        column = table[name]
        values = column.tolist()
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            array = column.to_numpy()
            for i in np.flatnonzero(~np.isfinite(array)):
                values[i] = _finite(values[i])
        out[str(name)] = values
    return out


def read_json(path: str) -> Any:
    """The data of a JSON file."""
    with open(path) as handle:
        return json.load(handle)


def write_tables(folder: str, tables: dict[str, pd.DataFrame]) -> None:
    """Write each table as ``folder/<name>.csv`` (`csv_text`)."""
    os.makedirs(folder, exist_ok=True)
    for name, table in tables.items():
        write_text(os.path.join(folder, f"{name}.csv"), csv_text(table))


def csv_text(table: pd.DataFrame) -> str:
    """``table.to_csv(index=False)``, the same text, built a column at a time.

    pandas formats a table row by row: an audit of all of QM9 (650,000 rows) took 2.4 s,
    this half of that. Columns of floats (float64), integers, booleans and strings are
    formatted here: floats by `repr`, the shortest text that reads back exactly, as pandas
    writes them; NaN and None as empty fields; a field holding a comma, a quote or a line
    break quoted, its quotes doubled. A table with any other kind of column goes to pandas.

    Examples
    --------
    >>> import pandas as pd
    >>> print(csv_text(pd.DataFrame({"id": ["a,b", '2" pipe'], "x": [0.1, float("nan")]})))
    id,x
    "a,b",0.1
    "2"" pipe",
    <BLANKLINE>
    """
    import numpy as np
    import pandas as pd

    if len(table.columns) < 2:
        # An empty field of a one-column row would be a blank line, which CSV readers skip;
        # pandas writes "" there.
        return table.to_csv(index=False)
    columns = []
    for name in table.columns:
        values = table[name]
        # NumPy kinds only: pandas' nullable Int64 / boolean / Float64 hold pd.NA, which
        # pandas writes as an empty field.
        kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else "?"
        if kind == "f" and values.dtype.itemsize == 8:
            text = list(map(float.__repr__, values.tolist()))
            if values.isna().any():
                text = ["" if v == "nan" else v for v in text]
        elif kind in "iub":
            text = list(map(str, values.tolist()))
        elif kind == "O" or isinstance(values.dtype, pd.StringDtype):
            text = values.tolist()
            if kind == "O" and not all(isinstance(v, str) or v is None for v in text):
                return table.to_csv(index=False)
            # Field by field only where something needs quotes (one vectorised test).
            if values.isna().any() or values.str.contains(f"[{_QUOTED}]", regex=True).any():
                text = [_csv_field(v) for v in text]
        else:
            return table.to_csv(index=False)
        columns.append(text)
    header = ",".join(_csv_field(str(name)) for name in table.columns)
    return "\n".join([header, *map(",".join, zip(*columns))]) + "\n"


# Characters that put a CSV field in quotes (as Python's csv module, pandas' writer, decides).
_QUOTED = ',"\n\r'


def _csv_field(value: Any) -> str:
    if not isinstance(value, str):  # None or a missing value: an empty field, as in pandas
        return ""
    if any(c in value for c in _QUOTED):
        return '"' + value.replace('"', '""') + '"'
    return value


class TableReport:
    """A report that is data (a JSON payload and named tables) and writes itself.

    Subclasses say what they hold (`payload`, `tables`); writing is the same for all.
    """

    def payload(self) -> dict[str, Any]:
        """Everything in the report, as JSON-compatible data."""
        raise NotImplementedError

    def tables(self) -> dict[str, pd.DataFrame]:
        """The report's tables by file name (without ``.csv``)."""
        raise NotImplementedError

    def to_json(self, path: str) -> None:
        """Write the whole report as one JSON file (`dumps_readable`)."""
        write_text(path, dumps_readable(self.payload(), default=_json_number))

    def to_csv(self, folder: str) -> None:
        """Write the report's tables as CSV files into ``folder``."""
        write_tables(folder, self.tables())


def _json_number(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds (``float`` would write an integer 3 as
    3.0, True as 1.0, and round integers past 2**53)."""
    if hasattr(value, "item"):
        return value.item()
    return float(value)
