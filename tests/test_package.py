import re
import subprocess
import sys
from pathlib import Path

import pytest

import dc_invariant

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves_and_all_is_sorted():
    assert dc_invariant.__all__ == sorted(dc_invariant.__all__)
    for name in dc_invariant.__all__:
        assert getattr(dc_invariant, name) is not None, name
    assert set(dc_invariant.__all__) <= set(dir(dc_invariant))


def test_public_names_are_their_home_modules_objects_whatever_was_imported_first():
    # Importing every submodule first binds each as an attribute of its parent package: a
    # public name that is also a submodule's name would then resolve to the module.
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(dc_invariant.__path__, "dc_invariant."):
        importlib.import_module(info.name)
    homes = dc_invariant._EXPORTS
    for name in dc_invariant.__all__:
        if name in homes:
            home = importlib.import_module(homes[name])
            assert getattr(dc_invariant, name) is getattr(home, name), name
    assert callable(dc_invariant.audit) and not isinstance(dc_invariant.audit, type(dc_invariant))


def test_every_module_says_what_it_exports_and_its_names_resolve():
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(dc_invariant.__path__, "dc_invariant."):
        if info.name.endswith("__main__"):
            continue  # a script, not a module to import from
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{info.name} has no __all__"
        for name in exported:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name!r}"


# Modules whose tests live elsewhere, each with the reason. Kept exact: an entry whose module
# is gone or has since got its mirror file fails the test below.
MIRROR_EXCEPTIONS = {
    "dc_invariant/cli/arguments.py": "the commands are tested end to end through main() in "
    "tests/cli/test_cli.py",
    "dc_invariant/cli/audit.py": "tested end to end through main() in tests/cli/test_cli.py",
    "dc_invariant/cli/featurize.py": "tested end to end through main() in tests/cli/test_cli.py",
    "dc_invariant/cli/sources.py": "tested end to end through main() in tests/cli/test_cli.py",
}
# The kernel model's subpackage keeps its own test layout (tests/models/kernel/test_kernel_*.py).
MIRROR_EXEMPT_PACKAGES = ("dc_invariant/models/kernel/",)


def _mirror_files(module: Path) -> list[Path]:
    """Where the tests of ``module`` may live: tests/<subpackage>/test_<module>.py, or with
    the subpackage's name in front (test_models_settings.py), since pytest imports test
    files by their base name and two test_settings.py would clash."""
    parts = module.relative_to(ROOT / "dc_invariant").parts
    folder = ROOT.joinpath("tests", *parts[:-1])
    names = [f"test_{module.stem}.py"]
    if len(parts) > 1:
        names.append(f"test_{parts[-2]}_{module.stem}.py")
    return [folder / name for name in names]


def test_every_module_has_its_mirror_test_file():
    missing, stale = [], []
    for module in sorted((ROOT / "dc_invariant").rglob("*.py")):
        relative = module.relative_to(ROOT).as_posix()
        if module.name.startswith("_") or relative.startswith(MIRROR_EXEMPT_PACKAGES):
            continue  # __init__, __main__ and private helpers
        mirrored = any(path.exists() for path in _mirror_files(module))
        if relative in MIRROR_EXCEPTIONS:
            if mirrored:
                stale.append(relative)
        elif not mirrored:
            missing.append(f"{relative}: expected {_mirror_files(module)[0].relative_to(ROOT)}")
    stale += [m for m in MIRROR_EXCEPTIONS if not (ROOT / m).exists()]
    assert not missing, "modules without a mirror test file:\n" + "\n".join(missing)
    assert not stale, f"MIRROR_EXCEPTIONS lists modules that are gone or now mirrored: {stale}"
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    shared = sorted({name for name in names if names.count(name) > 1})
    assert not shared, f"test files that share a base name: {shared}"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        dc_invariant.Nope  # noqa: B018


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_import_is_quiet_and_loads_neither_deepchem_nor_torch():
    run = _fresh(
        "import sys, dc_invariant\n"
        "heavy = [m for m in ('deepchem', 'torch', 'rdkit', 'pandas') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert run.stdout == "[]\n" and run.stderr == ""


def test_help_needs_no_heavy_import():
    run = _fresh(
        "import sys, contextlib, io\n"
        "from dc_invariant.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'featurize' in out.getvalue()\n"
        "print([m for m in ('deepchem', 'torch', 'rdkit', 'numpy') if m in sys.modules])"
    )
    assert run.stdout == "[]\n" and run.stderr == ""


def test_predicting_builds_no_optimizer():
    # An optimizer's first creation imports torch._dynamo: over a second that every audit
    # and every audit worker would pay for nothing.
    run = _fresh(
        "import sys, numpy as np\n"
        "from dc_invariant.models import RotationInvariantModel, SchNetModel\n"
        "arrays = (np.eye(3), np.ones((3, 2)), [6, 1, 1], [3])\n"
        "for cls in (RotationInvariantModel, SchNetModel):\n"
        "    model = cls(n_features=2, seed=0)\n"
        "    model.predict_arrays(*arrays)\n"
        "    model.predict_arrays(*arrays, forces=True)\n"
        "print('torch._dynamo' in sys.modules)"
    )
    assert run.stdout == "False\n"


@pytest.mark.slow
def test_quiet_deepchem_import_swallows_its_log_lines():
    run = _fresh("from dc_invariant._deepchem import import_deepchem\nimport_deepchem()")
    assert run.stdout == "" and run.stderr == ""


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    [command] = re.findall(r"<!-- test-command -->\n```bash\n(.+?)\n```", readme)
    assert "test-command" in ci and "README.md" in ci
    assert command.startswith("python -m pytest")


def _imports_of(path: Path, module: str, modules: set[str]) -> set[str]:
    """Package modules that ``module`` imports explicitly, anywhere in its code."""
    import ast

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            # "from a.b import c" names module a.b.c when c is a module, else a.b
            if name in modules:
                found.add(name)
                break
    return found - {module}


def test_no_import_cycles_in_the_package():
    root = ROOT / "dc_invariant"
    paths = {
        ".".join(("dc_invariant", *p.relative_to(root).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): p
        for p in root.rglob("*.py")
    }
    modules = set(paths)
    graph = {m: _imports_of(p, m, modules) for m, p in paths.items()}
    assert graph["dc_invariant.auditing.report"] >= {"dc_invariant.auditing.html"}  # sees edges

    def cycle_from(start: str) -> list[str]:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*trail, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return []

    cycles = [c for c in map(cycle_from, sorted(modules)) if c]
    assert not cycles, " -> ".join(cycles[0])
