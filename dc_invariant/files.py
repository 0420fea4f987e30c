"""Files the package writes: complete or absent, JSON and CSV only.

Every file is written under a temporary name and renamed into place, so an interruption or
an unserialisable value never leaves a half-written settings file, report or chunk behind.
`TableReport` is the shared writer of the audit's and the conformer-sensitivity reports.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TableReport", "atomic", "read_json", "write_json", "write_tables"]


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
    text = json.dumps(data, **{"indent": 2, **options})
    with atomic(path) as handle:
        handle.write(text)


def read_json(path: str) -> Any:
    """The data of a JSON file."""
    with open(path) as handle:
        return json.load(handle)


def write_tables(folder: str, tables: dict[str, pd.DataFrame]) -> None:
    """Write each table as ``folder/<name>.csv``."""
    os.makedirs(folder, exist_ok=True)
    for name, table in tables.items():
        with atomic(os.path.join(folder, f"{name}.csv")) as handle:
            table.to_csv(handle, index=False)


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
        """Write the whole report as one JSON file."""
        write_json(path, self.payload(), default=float)

    def to_csv(self, folder: str) -> None:
        """Write the report's tables as CSV files into ``folder``."""
        write_tables(folder, self.tables())
