"""The report's page in a real browser (headless Chromium, Debian's `chromium`) at 1280 and 800 px:
nothing cut off, every image loaded and unsquashed, nothing logged as an error. The checker itself is
shown to see a page wider than the window, a console error and an image that fails to load."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from benchmarks import pagecheck, report
from tests.synthetic_series import k3s_oom

ROOT = Path(__file__).resolve().parents[2]
VM_RESULTS = ROOT / "benchmarks" / "results" / "qemu-debian12"
WIDTHS = (1280, 800)
PNG = b"\x89PNG\r\n\x1a\n"

needs_chromium = pytest.mark.skipif(pagecheck.find_chromium() is None,
                                    reason=f"chromium is not installed: {pagecheck.INSTALL_HINT}")


def committed_results() -> list[dict[str, object]]:
    """The four measured cells the README's report is made from (kit 0.1.3, bare and Docker)."""
    files = sorted(glob.glob(str(VM_RESULTS / "2026-11-22-*-bare-kit0.1.3.json")))
    files += sorted(glob.glob(str(VM_RESULTS / "2026-11-22-*-docker-mariadb-kit0.1.3.json")))
    assert len(files) == 4
    return report.load(files)


@needs_chromium
def test_the_report_of_the_committed_results_fits_both_widths_and_logs_no_error(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    report.render(report.build_rows(committed_results()), None, None, page, "committed qemu results")
    shot = tmp_path / "shot.png"
    checks = pagecheck.check_page(page, WIDTHS, screenshot=shot)
    assert [c.width for c in checks] == list(WIDTHS)
    for c in checks:
        assert c.problems == [], f"at {c.width} px"
        assert c.measured["clientWidth"] <= c.width and len(c.measured["images"]) >= 1
        # The chart is scaled into the window, not drawn at its own 1430 px.
        chart = c.measured["images"][0]
        assert chart["naturalWidth"] == 1430 and chart["width"] < c.width
    assert shot.read_bytes()[:8] == PNG


@needs_chromium
def test_the_report_with_timelines_fits_both_widths_and_logs_no_error(tmp_path: Path) -> None:
    """The committed results plus one synthetic cell with series: the chart, the small multiples and
    that cell's timeline, and the sentence naming the four cells that have none."""
    page = tmp_path / "report.html"
    results = [*committed_results(), k3s_oom()]
    report.render(report.build_rows(results), None, None, page, "committed qemu results + a synthetic cell")
    assert sorted(p.name for p in tmp_path.glob("report-*.png")) == ["report-timeline-x86_64-k3s-1.png",
                                                                      "report-timelines.png"]
    for c in pagecheck.check_page(page, WIDTHS):
        assert c.problems == [], f"at {c.width} px"
        assert [i["el"] for i in c.measured["images"]] == [
            'img[alt="used memory per distro and arch"]',
            'img[alt="used memory over time, every cell on the same scales"]',
            'img[alt="used memory over time, x86_64-k3s-1"]']
        assert all(i["width"] <= c.measured["clientWidth"] for i in c.measured["images"])
    assert page.read_text().count("its result has no per-sample series") == 4


@needs_chromium
def test_the_checker_sees_an_image_wider_than_the_window(tmp_path: Path) -> None:
    """The page as it was: the 1430 px chart with nothing to scale it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 4.8))
    fig.savefig(tmp_path / "wide.png", dpi=110)
    plt.close(fig)
    page = tmp_path / "old.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>t</title></head>"
                    "<body style='margin:2em'><img alt='chart' src='wide.png'></body></html>")
    (check,) = pagecheck.check_page(page, [1280])
    assert check.measured["scrollWidth"] > check.measured["clientWidth"]
    assert any(p.startswith("the page is ") for p in check.problems)
    assert any(p.startswith('img[alt="chart"] spans 32..1462 px') for p in check.problems)


@needs_chromium
def test_the_checker_sees_console_errors_failed_loads_and_clipped_boxes(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>t</title></head><body>"
                    "<div style='width:300px;overflow:hidden'><table><tr><td style='white-space:nowrap'>"
                    + "x" * 200 + "</td></tr></table></div><img alt='gone' src='missing.png'>"
                    "<script>console.error('boom', 42)</script></body></html>")
    (check,) = pagecheck.check_page(page, [800])
    text = "\n".join(check.problems)
    assert "console: boom 42" in text
    assert 'img[alt="gone"] did not load' in text
    assert "missing.png" in text  # the browser's own log entry for the failed load
    assert "hides content" in text


def test_a_width_outside_the_range_is_refused_by_name(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    with pytest.raises(pagecheck.PageCheckError, match="window width 50: allowed is 200 to 4000 px"):
        pagecheck.check_page(page, [50], binary="/bin/true")
    with pytest.raises(pagecheck.PageCheckError, match="no such page"):
        pagecheck.check_page(tmp_path / "none.html", [800], binary="/bin/true")
