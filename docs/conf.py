"""Sphinx configuration of the dc_invariant documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (the ``docs``
extra installs what it needs). Pages that would otherwise drift from the code are written
here, at build time, into ``docs/_generated/``:

- the command-line reference: the ``--help`` of every command, from
  ``dc_invariant.cli.build_parser()``;
- the main job's output (``dc-invariant`` run once, about 5 s);
- the performance tables, from ``benchmarks/results/summary.md`` and ``deepchem_zoo.md``.

A build also fails (a warning, which ``-W`` makes an error) when a name in a public
``__all__`` has no entry in ``api.rst``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import dc_invariant  # noqa: E402

project = "dc_invariant"
author = "the dc_invariant authors"
copyright = "2026, the dc_invariant authors"
release = version = dc_invariant.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "_generated", "conftest.py", "auto_examples/*.ipynb"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_theme = "pydata_sphinx_theme"
html_title = f"dc_invariant {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": {"**": ["page-toc"], "performance": []},
}
html_sidebars = {"index": [], "getting_started": [], "changelog": [], "performance": []}
html_show_sourcelink = False

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's type lines say it, with shapes and units
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# The gallery: every example is shown; the quick ones (about 5 s each on two cores) are run
# with --small, so their output and figures appear. Not run: kernel_conformer_ensembles (about
# 20 s of embedding; the test suite runs it), kernel_model_qm9 (needs the qm9
# extra's data, which the docs extra does not install), scale_out (starts a Dask cluster of
# its own) and train_invariant_model (about 40 s of training, too slow for every build; the
# test suite runs it and recomputes the figures it prints).
GALLERY_RUN = (
    "tutorial_tables",
    "featurize_csv",
    "conformer_sensitivity",
    "audit_coulomb_featurizers",
)
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/(" + "|".join(GALLERY_RUN) + r")\.py$",
    "ignore_pattern": r"__init__\.py",
    "reset_argv": "gallery_argv.small",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 10**6,
    "show_memory": False,
    "show_signature": False,
    "backreferences_dir": None,
    "matplotlib_animations": False,
}


# --------------------------------------------------------------------------- generated


def _write(name: str, text: str) -> None:
    GENERATED.mkdir(exist_ok=True)
    path = GENERATED / name
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _cli_reference() -> None:
    """Each command's ``--help``, as a user's terminal of 88 columns prints it."""
    os.environ["COLUMNS"] = "88"
    from dc_invariant.cli import build_parser

    parser = build_parser()
    _write("cli-dc-invariant.txt", parser.format_help())
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in commands.items():
        _write(f"cli-{name}.txt", sub.format_help())
    _write("cli-commands.txt", " ".join(commands))


def _main_job_output() -> None:
    """The output of ``dc-invariant`` (the main job), run now, so it cannot go stale."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "dc_invariant.cli"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    _write("main-job.txt", done.stdout.strip() + "\n")


def _markdown_table(lines: list[str], widths: str = "auto") -> str:
    """A Markdown table (header, rule, rows) as an RST list-table."""

    def cells(line: str) -> list[str]:
        return [_inline(c.strip()) for c in line.strip().strip("|").split("|")]

    header, rows = cells(lines[0]), [cells(line) for line in lines[2:]]
    out = [".. list-table::", "   :header-rows: 1", "   :class: benchmark-table"]
    out += [f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        row = row + [""] * (len(header) - len(row))
        out.append("   * - " + (row[0] or " "))
        out.extend("     - " + (c or " ") for c in row[1:])
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Markdown inline code and bold as RST."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def _markdown_blocks(text: str) -> str:
    """Paragraphs, bullet lines and tables of a results file, in RST."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out.append(_markdown_table(lines[i:j]))
            i = j
            continue
        if lines[i].strip():
            out.append(_inline(lines[i]) + "\n")
        i += 1
    return "\n".join(out)


#: The benchmarks of run_all.py, in the order the Performance page discusses them.
BENCHMARKS = ("featurize", "qm9_accuracy", "inference", "audit", "schnet", "scaling")


def _performance_tables() -> None:
    """The summary's header lines, and one table per benchmark without its name column.

    Where the benchmarks ran from (a virtual environment's path given on the command line)
    says nothing to a reader: such a path is shown as PATH.
    """
    results = ROOT / "benchmarks" / "results"
    text = (results / "summary.md").read_text()
    text = re.sub(r"(--\S+-python) [^\s`]+", r"\1 PATH", text)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = [line for line in lines[first:] if line.startswith("|")]
    _write("summary-header.rst", _markdown_blocks("\n".join(lines[:first])))
    header, rows = table[0], table[2:]
    groups: dict[str, list[str]] = {name: [] for name in BENCHMARKS}
    for row in rows:
        name, _, rest = row.strip().strip("|").partition("|")
        groups.setdefault(name.strip(), []).append("|" + rest)
    unknown = set(groups) - set(BENCHMARKS)
    if unknown:
        raise ValueError(f"summary.md has benchmarks the Performance page lacks: {unknown}")
    columns = "|" + header.strip().strip("|").partition("|")[2] + "|"
    rule = "|" + "---|" * (columns.count("|") - 1)
    for name, group in groups.items():
        # measure, ours, peer, ours value, peer value, ratio, target, met
        widths = "20 17 17 9 9 6 15 5"
        body = _markdown_table([columns, rule, *group], widths) if group else "(not run)\n"
        _write(f"summary-{name}.rst", body)
    _write("deepchem-zoo.rst", _markdown_blocks((results / "deepchem_zoo.md").read_text()))


#: Packages whose ``__all__`` is the public surface; each name needs an entry in api.rst.
PUBLIC_PACKAGES = ("dc_invariant", "dc_invariant.models", "dc_invariant.auditing")


def _check_api(app) -> None:
    """Warn about every public name without an entry in api.rst.

    A name re-exported by several packages counts as listed when the same object is listed
    under another of its names.
    """
    from sphinx.util import logging

    logger = logging.getLogger("dc_invariant.docs")
    listed, module = set(), "dc_invariant"
    for line in (DOCS / "api.rst").read_text().splitlines():
        directive = re.match(r"\.\. (?:currentmodule|automodule):: ([\w.]+)", line)
        if directive:
            module = directive.group(1)
        entry = re.match(r"^   ([A-Za-z_][\w.]*)$", line)
        if entry:
            listed.add(f"{module}.{entry.group(1)}")
    objects = set()
    for entry in listed:
        module, _, name = entry.rpartition(".")
        objects.add(id(getattr(importlib.import_module(module), name)))
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            if f"{package}.{name}" not in listed and id(getattr(module, name)) not in objects:
                logger.warning(f"api.rst: no entry for {package}.{name} (in its __all__)")


def _plural_roles(app, what, name, obj, options, lines) -> None:
    """``Conformer`s`` in a docstring: reST needs an escaped space before the plural s."""
    lines[:] = [re.sub(r"(`+[\w.]+`+)s\b", r"\1\\ s", line) for line in lines]


def _data_comments(app, what, name, obj, options, lines) -> None:
    """A constant's ``#:`` comment from the module that defines it.

    autodoc reads ``#:`` comments only in the module it documents from, and a constant
    re-exported by a package would otherwise show its type's docstring ("Built-in immutable
    sequence").
    """
    if what != "data":
        return
    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    short = name.rpartition(".")[2]
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("dc_invariant") or getattr(module, short, None) is not obj:
            continue
        try:
            comment = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", short))
        except PycodeError:
            continue
        if comment:
            lines[:] = list(comment)
            return


def setup(app):
    _cli_reference()
    _main_job_output()
    _performance_tables()
    app.connect("builder-inited", _check_api)
    app.connect("autodoc-process-docstring", _data_comments)
    app.connect("autodoc-process-docstring", _plural_roles)
    app.add_css_file("dc_invariant.css")
    return {"parallel_read_safe": True}
