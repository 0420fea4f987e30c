"""The README is a front door: short, its snippets run, its table matches a fresh audit."""

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_is_short_and_keeps_the_test_command_marker():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150
    # .ci/run reads the third line from the marker: the marker, the fence, the command.
    start = lines.index("<!-- test-command -->")
    assert lines[start + 1] == "```bash"
    assert lines[start + 2].startswith("python -m pytest")
    # .ci/run installs with the line after the install-command marker in the same way.
    start = lines.index("<!-- install-command -->")
    assert lines[start + 1 : start + 3] == [
        "```bash",
        'pip install "torch==2.13.0" -e ".[test]" && dc-invariant',
    ]


def test_readme_snippets_print_what_they_show():
    text = README.read_text()
    test = doctest.DocTestParser().get_doctest(text, {}, "README.md", str(README), 0)
    assert len(test.examples) >= 10
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README example(s) print something else"


def readme_table() -> dict[str, dict[str, str]]:
    rows = re.findall(r"^\| `(\w+Model)` \| (.+) \|$", README.read_text(), re.M)
    symmetries = ("permutation", "translation", "rotation", "reflection")
    return {model: dict(zip(symmetries, cells.split(" | "))) for model, cells in rows}


def test_readme_table_matches_the_main_job(capsys):
    from dc_invariant.cli import main

    assert main([]) == 0
    out = capsys.readouterr().out
    table = readme_table()
    assert len(table) == 4
    for model, verdicts in table.items():
        section = out.split(f"({model}) ==", 1)[1].split("\n== ", 1)[0]
        for symmetry, claimed in verdicts.items():
            row = re.search(rf"^{symmetry} .*$", section, re.M)
            assert row is not None, (model, symmetry)
            measured = "broken" if row.group(0).endswith("broken") else "holds"
            assert measured == claimed, (model, symmetry, row.group(0))


def test_readme_links_exist():
    root = README.parent
    targets = re.findall(r"\]\(((?:docs|CONTRIBUTING)[^)#]*)\)", README.read_text())
    assert "CONTRIBUTING.md" in targets
    for target in targets:
        assert (root / target).exists(), target
