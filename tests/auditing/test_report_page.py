"""The audit's HTML page: what a reader sees, checked in the page source and in a browser."""

import base64
import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dc_invariant import audit

AMMONIUM, CHLOROQUINE = "[NH4+]", "CCN(CC)CCCC(C)Nc1ccnc2cc(Cl)ccc12"


def composition(r, x):
    """Reads no coordinates: every deviation is exactly zero."""
    return x.sum(axis=0)


def first_x(r, x):
    return np.array([r[0, 0]])


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    out = {}
    for name, target in (("zeros", composition), ("broken", first_x)):
        report = audit(target, [AMMONIUM, CHLOROQUINE, "CCO"], n_samples=2)
        out[name] = folder / f"{name}.html"
        report.to_html(str(out[name]))
    return out


def test_page_declares_a_viewport_and_aligns_text_headers_left(pages):
    page = pages["broken"].read_text()
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    assert "<th class=text>SMILES</th>" in page and "<th class=text>verdict</th>" in page
    assert "<div class=scroll><table" in page  # wide tables scroll in their own box


def test_all_zero_deviations_are_said_in_words_and_not_listed_as_largest(pages):
    page = pages["zeros"].read_text()
    assert "every one of 3 deviations is exactly zero" in page
    assert "Largest deviations" not in page
    # A target whose deviations are not all zero still lists its molecules.
    assert "Largest deviations: rotation" in pages["broken"].read_text()


def test_every_image_has_alt_text_and_drawings_share_one_scale(pages):
    page = pages["broken"].read_text()
    images = re.findall(r"<img ([^>]*)>", page)
    assert images and all(re.search(r'alt="[^"]+"', image) for image in images)
    width = {
        smiles: int(
            re.search(
                rf'alt="2D drawing of [^"]*\({re.escape(smiles)}\)" width="(\d+)"', page
            ).group(1)
        )
        for smiles in (AMMONIUM, CHLOROQUINE)
    }
    assert width[AMMONIUM] * 3 < width[CHLOROQUINE]
    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        assert base64.b64decode(data).startswith(b"\x89PNG")


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    return chromium, sync_playwright


def _screenshots():
    """``docs/screenshots.py`` (a script, not a package module), loaded by its path."""
    path = Path(__file__).resolve().parents[2] / "docs" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("docs_screenshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", ["zeros", "broken"])
def test_page_in_a_browser_has_no_errors_no_broken_images_no_overflow(pages, name, tmp_path):
    chromium, sync_playwright = _browser()
    args = _screenshots().CHROMIUM_ARGS  # the flags the docs' screenshots are taken with
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, args=args, headless=True
        )
        try:
            for width in (1280, 420):
                page = browser.new_page()
                errors: list[str] = []

                def console(message, errors=errors):
                    if message.type == "error":
                        errors.append(message.text)

                page.on("console", console)
                page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(pages[name].as_uri())
                page.wait_for_load_state("load")
                assert errors == [], (width, errors)
                undecoded = page.evaluate(
                    "[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                    ".map(i => i.alt)"
                )
                assert undecoded == [], (width, undecoded)
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (width, overflow)
                page.close()
        finally:
            browser.close()
