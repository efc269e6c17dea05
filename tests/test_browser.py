"""The headless-Chromium page check (acceptance/browser.py, spec/08_TEST_PLAN.md) catches what
it must: an image that did not load, a request the page's CSP blocked, a console error; and
passes a self-contained page. Skips, saying why, only when no Chromium is installed."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from acceptance.browser import find_browser, open_page
from canon import CANON
from critspec.figures.render import new_figure

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium installed (apt-get install chromium-headless-shell, see .ci/run)",
)
HEAD = (
    '<!DOCTYPE html><html><head><meta charset="utf-8">'
    f'<meta http-equiv="Content-Security-Policy" content="{CANON.CONST.REPORT_CSP}">'
    "<title>t</title></head><body><h1>page</h1>"
)


def _png_uri() -> str:
    fig, axes = new_figure(1, 1)
    axes[0, 0].plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_a_self_contained_page_loads_clean(tmp_path: Path) -> None:
    page = tmp_path / "good.html"
    page.write_text(HEAD + f'<figure><img src="{_png_uri()}" alt="plot"></figure></body></html>')
    report = open_page(page, tmp_path / "shots", BROWSER)
    assert report.problems() == []
    assert [i["naturalWidth"] > 0 for i in report.images] == [True]
    assert all(p.is_file() and p.stat().st_size > 0 for p in report.screenshots)
    assert len(report.screenshots) == 2  # the first screen and the first figure


def test_broken_and_blocked_images_and_errors_are_reported(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        HEAD
        + '<img src="data:image/png;base64,AAAA" alt="broken">'
        + '<img src="http://192.0.2.1/x.png" alt="outside">'
        + "<script>console.error('boom')</script></body></html>"
    )
    report = open_page(page, tmp_path / "shots", BROWSER)
    problems = report.problems()
    assert {i["alt"] for i in report.broken_images} == {"broken", "outside"}
    # The CSP refuses the outside image and the inline script, and says so on the console.
    assert any("Content Security Policy" in e for e in report.console_errors), problems
    assert any("192.0.2.1" in r for r in report.failed_requests + report.foreign_requests) or any(
        "192.0.2.1" in e for e in report.console_errors
    ), problems
