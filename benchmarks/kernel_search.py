"""KernelModel's search against a previous version's, on QM9 U0 energies, in one run.

Same split as ``qm9_accuracy.py`` (a seeded 10,000 / 1,000 / 1,000 of QM9 with its DFT
geometries; training sets are the learning curve's seeded subsets, tested on the same 1,000
molecules). At each size the default ``KernelModel()`` of this checkout and of a previous
one (``--previous DIR``, a source tree of dc_invariant, e.g. ``git archive 8d71ce4 | tar -x
-C DIR``) are fitted one after the other, each in a fresh process, so both see the same
machine: whole fit time (representation, search, solve), test MAE, the chosen sigma and
regularization. Run ``python benchmarks/kernel_search.py --previous DIR --sizes 2000,5000``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Optional

import numpy as np
from _measure import cpu_model

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker(n: int, seed: int) -> dict[str, Any]:
    """Fit the importable KernelModel() on ``n`` molecules of the split; its figures."""
    sys.path.insert(0, HERE)
    from _kernel_curve import subset
    from qm9_accuracy import DEFAULTS, split

    from dc_invariant.datasets import load_qm9
    from dc_invariant.models import KernelModel

    sizes = DEFAULTS[:3]
    _, (everything,), _ = load_qm9(tasks=["u0_atom"], limit=sum(sizes), splitter=None, seed=seed)
    train, _, test = split(everything, sizes, seed)
    part = subset(train, n, seed)
    model = KernelModel(seed=seed)
    start = time.perf_counter()
    model.fit(part)
    seconds = time.perf_counter() - start
    predicted = model.predict(test).reshape(-1)
    return {
        "n": len(part),
        "mae": float(np.abs(predicted - test.y.reshape(-1)).mean()),
        "fit_s": seconds,
        "sigma": model.fitted["sigma"],
        "regularization": model.fitted["regularization"],
    }


def run(source: str, n: int, seed: int) -> dict[str, Any]:
    """`worker` in a fresh process importing dc_invariant from ``source``."""
    env = {**os.environ, "PYTHONPATH": source}
    code = (
        f"import sys, json; sys.path.insert(0, {HERE!r}); import kernel_search; "
        f"print('RESULT', json.dumps(kernel_search.worker({n}, {seed})))"
    )
    # In the source tree, so that `python -c` (which puts the working folder first on
    # sys.path) imports that tree's dc_invariant.
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=source, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise RuntimeError(f"the fit from {source} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", required=True, help="source tree of the previous version")
    parser.add_argument("--sizes", default="2000,5000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"# KernelModel search: this checkout against {args.previous}")
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); {now}")
    print()
    print("| training molecules | version | test MAE (eV) | whole fit (s) | sigma | λ |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in (int(v) for v in args.sizes.split(",")):
        for name, source in (("this", ROOT), ("previous", args.previous)):
            r = run(source, n, args.seed)
            print(
                f"| {r['n']:,} | {name} | {r['mae']:.4f} | {r['fit_s']:.0f} | {r['sigma']:.3g} | "
                f"{r['regularization']:.3g} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
