"""The report's paper outputs and page: LaTeX tables compile with pdflatex and print no raw exponents; the
leaderboard page works in a real headless Chromium with the network blocked."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.results import db
from benchmark.stages import importers, report
from benchmark.reporting import latex
from conftest_hub import make_leaderboard
from test_import_table import MAP, PAPER_CSV

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RAW_EXPONENT = re.compile(r"\d[eE][+-]?\d")


def tricky_fits(source: str) -> list[dict]:
    """Parameters as fits leave them: E at its bound (1.97e-16), an interval up to 2.29e+132, no interval at all."""
    rows = []
    for p, est, lo, hi in [("E", 1.97e-16, 1.97e-16, 0.0182), ("A", 406.4, 12.0, 2.29e132), ("B", 410.7, None, None),
                           ("alpha", 0.3392, 0.3123, 0.3711), ("beta", 0.2849, 0.2611, 0.3101), ("a", 0.4565, 0.44, 0.47)]:
        rows.append({"source": source, "law": "chinchilla", "target": "val_loss/all", "parameter": p, "estimate": est,
                     "se": None, "ci95_low": lo, "ci95_high": hi, "n_points": 6, "method": "{}", "extrapolation_rel_err": 0.0123,
                     "identified": True, "identification": None})
    rows += [{"source": source, "law": "sigmoid_compute", "target": "accuracy/mmlu", "parameter": p, "estimate": v,
              "se": None, "ci95_low": v * 0.8, "ci95_high": v * 1.3, "n_points": 3, "method": "{}", "extrapolation_rel_err": None,
              "identified": True, "identification": None}
             for p, v in [("lo", 25.0), ("hi", 80.0), ("k", 1.2), ("C_mid", 3.1e23), ("C_growth", 5.2e22), ("C_saturation", 1.9e24)]]
    return rows


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    """leaderboard/ with the local synthetic grid, a paper's table imported as a source, its fits, and the report run."""
    out = tmp_path_factory.mktemp("board") / "leaderboard"
    db_path = make_leaderboard(out)
    (out.parent / "t.csv").write_text(PAPER_CSV.replace("137 Billion,168 Billion", "137,168"))
    (out.parent / "m.yaml").write_text(MAP)
    assert importers.main(["table", str(out.parent / "t.csv"), "--map", str(out.parent / "m.yaml"), "--db", str(db_path)]) == 0
    con = db.connect(str(db_path))
    try:
        db.replace_rows(con, "fits", tricky_fits("hoffmann2022-table1"), source="hoffmann2022-table1")
    finally:
        con.close()
    report.report(out / "data", out / "fits.json", out, "org/name", out / "fit_draws.json", db_path)
    return out


def test_numbers_are_typeset_for_a_paper():
    assert latex.interval_cell("E", 1.8166, [1.769, 1.871]) == (r"$1.817\ [1.769,\ 1.871]$", None)
    assert latex.interval_cell("N_opt", 8.41e9, [6.6e9, 1.16e10]) == (r"$(8.4\ [6.6,\ 11.6]) \times 10^{9}$", None)
    assert latex.interval_cell("E", 1.97e-16, [1.97e-16, 0.0182])[1] == "b"      # at its bound: shown as 0
    assert latex.interval_cell("A", 406.4, [12.0, 2.29e132])[1] == "u"           # unidentified
    assert latex.number(1.97e-16) == r"$1.97 \times 10^{-16}$"


def test_every_table_compiles_and_prints_no_raw_exponent(board, tmp_path):
    assert shutil.which("pdflatex") and shutil.which("pdftotext"), "pdflatex/pdftotext missing: .ci/run installs texlive and poppler-utils"
    tables = sorted((board / "tables").glob("*.tex"))
    assert {t.name for t in tables} >= {"fits.tex", "chinchilla_by_source.tex", "sigmoid_compute_by_source.tex"}
    for t in tables:
        text = t.read_text()
        assert not RAW_EXPONENT.search(text), (t.name, RAW_EXPONENT.search(text))
        (tmp_path / "doc.tex").write_text(latex.document([text]))
        r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (t.name, r.stdout[-2000:])
        out = subprocess.run(["pdftotext", "-layout", "doc.pdf", "-"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
        assert out.strip() and not RAW_EXPONENT.search(out), (t.name, out)
        if t.name == "chinchilla_by_source.tex":
            assert "At the bound" in out and "Unidentified" in out and "hoffmann2022-table1" in out


def runs_in_db(board: Path) -> dict[str, int]:
    con = db.connect(str(board / "results.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT source, count(*) FROM runs GROUP BY source").fetchall())
    finally:
        con.close()


def test_page_in_headless_chromium_offline(board, tmp_path):
    assert CHROMIUM, "chromium missing: .ci/run installs Debian's chromium"
    from playwright.sync_api import sync_playwright

    counts = runs_in_db(board)
    assert counts == {"local": 3, "hoffmann2022-table1": 6}
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                                                                    "--no-sandbox", "--disable-background-networking"])
        try:
            ctx = browser.new_context(viewport={"width": 1366, "height": 900}, offline=True)
            ctx.route("**/*", lambda route: (requests.append(route.request.url),
                                             route.continue_() if route.request.url.startswith("file:") else route.abort()))
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((board / "index.html").as_uri(), wait_until="load")
            assert errors == [] and requests and all(u.startswith("file:") for u in requests), requests
            rows = page.locator("#runs tbody tr")
            assert rows.count() == sum(counts.values())                      # one row per run, every source
            assert page.locator("img").count() >= 4 and all(
                s.startswith("data:image/png;base64,") for s in page.eval_on_selector_all("img", "els => els.map(e => e.src)"))

            def column(name: str) -> list[float]:
                idx = page.eval_on_selector_all("#runs thead th", f"ths => ths.findIndex(t => t.textContent === {name!r})")
                return page.eval_on_selector_all(f"#runs tbody tr:not(.hidden) td:nth-child({idx + 1})",
                                                 "tds => tds.map(t => parseFloat(t.dataset.v))")
            before = column("N")
            page.click("#runs thead th:text-is('N')")
            up = column("N")
            assert up == sorted(before) and up != before                     # the click reordered the rows
            page.click("#runs thead th:text-is('N')")
            assert column("N") == sorted(before, reverse=True)
            page.uncheck("input.src[value='local']")
            visible = page.eval_on_selector_all("#runs tbody tr:not(.hidden)", "trs => trs.map(t => t.dataset.source)")
            assert visible == ["hoffmann2022-table1"] * counts["hoffmann2022-table1"]
            assert page.locator("#fits tbody tr[data-source='local']:not(.hidden)").count() == 0
            page.check("input.src[value='local']")
            page.fill("#q", "chinchilla")
            assert page.locator("#runs tbody tr:not(.hidden)").count() == 1
            page.fill("#q", "")
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=False)
            page.emulate_media(media="print")
            assert page.locator(".controls").is_hidden()                    # the print stylesheet applies
        finally:
            browser.close()
    assert all(u.startswith("file:") for u in requests), requests
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] >= 800 and img.shape[1] >= 1300
    ink = (img[..., :3].mean(axis=2) < 0.6).mean()
    assert 0.005 < ink < 0.6 and img[..., :3].std() > 0.05, ink               # text and tables, not a blank page
