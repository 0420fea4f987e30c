"""Files the package writes are complete or absent."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from dc_invariant.files import (
    TableReport,
    atomic,
    columns_of,
    csv_text,
    dumps_readable,
    numbers_back,
    read_json,
    write_json,
    write_tables,
)


def test_atomic_renames_into_place_only_when_the_block_succeeds(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic(path) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
    with atomic(path) as handle:
        handle.write("new")
    assert path.read_text() == "new" and list(tmp_path.iterdir()) == [path]


def test_json_that_cannot_be_written_leaves_nothing_behind(tmp_path):
    path = tmp_path / "report.json"
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"bad": object()})
    assert not list(tmp_path.iterdir())
    write_json(path, {"seed": 3, "values": [1.5, None]})
    assert read_json(str(path)) == {"seed": 3, "values": [1.5, None]}
    assert json.loads(path.read_text()) == read_json(str(path))


def test_readable_json_keeps_columns_on_one_line_and_reads_back():
    data = {"settings": {"seed": 3}, "rows": [{"id": "a"}], "x": [1.5, float("nan"), None]}
    text = dumps_readable(data)
    # Standard JSON: NaN is null (Python's NaN token is refused by JavaScript's JSON.parse).
    assert '"x": [1.5, null, null]' in text and '    "seed": 3' in text
    back = json.loads(text)
    assert back["settings"] == {"seed": 3} and back["rows"] == [{"id": "a"}]
    table = pd.DataFrame({"id": ["a", "inf"], "ok": [True, False], "d": [-np.inf, np.nan]})
    table["e"] = np.array([np.inf, 1.0], dtype=np.float32)
    text = dumps_readable(columns_of(table))
    assert '"d": ["-inf", null]' in text and '"e": ["inf", 1.0]' in text
    read = numbers_back(pd.DataFrame(json.loads(text)), ["d", "e"])
    pd.testing.assert_frame_equal(read, table, check_dtype=False)


def test_tables_are_written_one_csv_each_into_a_new_folder(tmp_path):
    folder = tmp_path / "out" / "tables"
    tables = {"molecules": pd.DataFrame({"id": ["a", "b"], "x": [1.0, 2.0]})}
    tables["skipped"] = pd.DataFrame(columns=["id", "reason"])
    write_tables(str(folder), tables)
    assert sorted(p.name for p in folder.iterdir()) == ["molecules.csv", "skipped.csv"]
    pd.testing.assert_frame_equal(pd.read_csv(folder / "molecules.csv"), tables["molecules"])


AWKWARD = {
    "id": ["plain", "a,b", 'say "hi"', "two\nlines", "", None],
    "smiles": pd.array(["C", "CC,O", None, "O", "N", "[Na+]"], dtype="str"),
    "n_atoms": np.arange(6, dtype=np.int64),
    "x": [0.1, np.nan, -0.0, 1e300, np.inf, 1 / 3],
    "passed": [True, False, True, True, False, True],
}


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame(AWKWARD),
        pd.DataFrame(AWKWARD).iloc[:0],
        pd.DataFrame({"id": ["a"], "b,c": [np.int32(3)]}),
    ],
    ids=["awkward", "no-rows", "quoted-header"],
)
def test_csv_text_is_pandas_text_without_pandas(table, monkeypatch):
    expected = table.to_csv(index=False)
    monkeypatch.setattr(pd.DataFrame, "to_csv", None)  # the fast path must not need it
    assert csv_text(table) == expected


@pytest.mark.parametrize(
    "column",
    [
        np.float32([0.1, 2.5]),  # pandas writes 0.1, not repr's 0.10000000149011612
        [1, "a"],
        pd.to_datetime([0, 1]),
        pd.array([1, None], dtype="Int64"),  # pd.NA: an empty field, not <NA>
        pd.array([True, None], dtype="boolean"),
        pd.array([0.5, None], dtype="Float64"),
        pd.Categorical(["a", "b,c"]),
    ],
    ids=["float32", "mixed", "datetime", "Int64", "boolean", "Float64", "category"],
)
def test_csv_text_of_other_columns_is_still_pandas_text(column):
    table = pd.DataFrame({"id": ["m1", "m2"], "value": column})
    assert csv_text(table) == table.to_csv(index=False)


def test_a_one_column_table_keeps_its_empty_rows():
    # Written as blank lines they would vanish on reading: pandas writes "".
    table = pd.DataFrame({"id": ["a", "", None, "b"]})
    assert csv_text(table) == 'id\na\n""\n""\nb\n'
    assert len(pd.read_csv(io.StringIO(csv_text(table)))) == 4


def test_report_json_keeps_numpy_integers_and_booleans_as_they_are(tmp_path):
    class Counts(TableReport):
        def payload(self):
            return {"n": np.int64(3), "ok": np.bool_(True), "big": np.int64(2**53 + 1),
                    "x": np.float32(0.5)}  # fmt: skip

    Counts().to_json(str(tmp_path / "r.json"))
    back = read_json(str(tmp_path / "r.json"))
    assert back == {"n": 3, "ok": True, "big": 2**53 + 1, "x": 0.5}
    assert type(back["n"]) is int and back["ok"] is True
