"""Screenshots of the audit's report page for the documentation, in headless Chromium.

Run ``python docs/screenshots.py`` after changing ``dc_invariant/auditing/html.py``: it
audits ``RotationInvariantModel`` over the built-in molecules (``dc-invariant audit --model
rotation --out DIR``), opens the page at 1280 and 420 pixels wide, and writes the first
screen of each to ``docs/_static/report-1280.png`` and ``report-420.png``. ``--page URL``
shoots another page instead (the built docs' front page, say) into ``--to PREFIX``.

Needs Chromium (``apt-get install chromium``) and Playwright for Python (``pip install
playwright``; its own browser download is not used).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STATIC = Path(__file__).resolve().parent / "_static"
#: Viewport (width, height) of each screenshot.
SIZES = ((1280, 1000), (420, 1400))


def shoot(url: str, prefix: str) -> None:
    """Screenshot ``url`` at each of `SIZES` into ``{prefix}-{width}.png``."""
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            for width, height in SIZES:
                page = browser.new_page()
                page.set_viewport_size({"width": width, "height": height})
                page.goto(url)
                page.wait_for_load_state("load")
                page.screenshot(path=f"{prefix}-{width}.png")
                page.close()
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--page", help="URL to shoot instead of a fresh audit report")
    parser.add_argument("--to", default=str(STATIC / "report"), help="output prefix")
    args = parser.parse_args(argv)
    if args.page:
        shoot(args.page, args.to)
        return 0
    from dc_invariant.cli import main as dc_invariant

    with tempfile.TemporaryDirectory() as out:
        status = dc_invariant(["audit", "--model", "rotation", "--out", out])
        if status:
            return status
        shoot((Path(out) / "rotation" / "report.html").as_uri(), args.to)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
