"""The dataset card parses as Hub card metadata, and documents every column of every parquet file, from schema.py."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard, DatasetCardData

from benchmark.reporting import card
from benchmark.results import schema
from benchmark.results.parquet import CONFIGS
from benchmark.results.dataset import table_summaries
from conftest_hub import REPO, make_leaderboard

ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<type>[^|]+) \| (?P<unit>(?:[^|\\]|\\.)*) \| (?P<nullable>yes|no) \| (?P<desc>.*) \|$")
ARROW_NAMES = {"string": "string", "int64": "int64", "double": "double", "bool": "bool"}


def documented(text: str, table: str) -> list[dict[str, str]]:
    """The rows of the card's schema table for `table`, descriptions unescaped back to plain text."""
    start = text.index(f"### `{table}`")
    end = min((i for i in (text.find("\n### ", start + 1), text.find("\n## ", start + 1)) if i > 0), default=len(text))
    rows = [m.groupdict() for line in text[start:end].splitlines() if (m := ROW.match(line))]
    for r in rows:
        r["desc"] = html.unescape(re.sub(r"\\(.)", r"\1", r["desc"]))
        r["unit"] = html.unescape(re.sub(r"\\(.)", r"\1", r["unit"]))
    return rows


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("card") / "leaderboard"
    make_leaderboard(folder)
    return folder


def test_card_metadata_parses_as_hub_dataset_card(leaderboard):
    from datasets.utils.metadata import MetadataConfigs

    data = DatasetCard((leaderboard / "README.md").read_text()).data
    assert isinstance(data, DatasetCardData)
    assert data.license == "cc-by-4.0" and "scaling-laws" in data.tags and data.pretty_name
    configs = MetadataConfigs.from_dataset_card_data(data)  # what `datasets.load_dataset` reads
    assert list(configs) == list(CONFIGS) and configs.get_default_config_name() == "runs"
    for name in CONFIGS:
        assert configs[name]["data_files"] == [{"split": "train", "path": f"data/{name}.parquet"}]
        assert (leaderboard / f"data/{name}.parquet").is_file()


def test_every_parquet_column_is_documented_with_schema_unit_and_meaning(leaderboard):
    text = (leaderboard / "README.md").read_text()
    for name in CONFIGS:
        fields = pq.read_schema(leaderboard / "data" / f"{name}.parquet")
        rows = documented(text, name)
        assert [r["name"] for r in rows] == fields.names  # every column, in file order, nothing else
        for r, field in zip(rows, fields):
            assert ARROW_NAMES[r["type"]] == str(field.type)
            assert r["desc"] == field.metadata[b"description"].decode()  # the file's own metadata, from schema.py
            assert r["unit"] == (field.metadata[b"unit"].decode() or "–")
            assert (r["nullable"] == "yes") == field.nullable
        assert f"File `data/{name}.parquet`, {pq.read_metadata(leaderboard / 'data' / f'{name}.parquet').num_rows} rows." in text


def test_a_card_missing_a_column_is_caught(leaderboard):
    summaries = table_summaries(leaderboard)
    runs = summaries[0]
    short = [card.TableSummary("runs", runs.columns[:-1], runs.n_rows), *summaries[1:]]
    text = card.render(tables=short, repo_id=REPO, git_sha="abc", fit_method="-", metric_signatures={})
    assert [r["name"] for r in documented(text, "runs")] != list(pq.read_schema(leaderboard / "data/runs.parquet").names)
    with pytest.raises(schema.SchemaError, match="not defined in schema.py"):
        card.render(tables=[card.TableSummary("runs", ("source", "mystery"), 1)], repo_id=REPO, git_sha="abc",
                    fit_method="-", metric_signatures={})


def test_card_states_provenance_loading_citation_and_embeds_blocks(leaderboard):
    sha = "0123456789abcdef0123456789abcdef01234567"
    fits = [{"law": "chinchilla", "target": "val_loss/all", "parameter": "alpha", "estimate": 0.345678, "se": 0.0154,
             "ci95_low": 0.317, "ci95_high": 0.373, "n_points": 240}]
    text = card.render(tables=table_summaries(leaderboard), repo_id="org/results", git_sha=sha, fits=fits,
                       fit_method="Huber loss, delta 1e-3.", metric_signatures={"bleu": "nrefs:1|tok:13a"},
                       blocks=[("Leaderboard", "| model | loss |\n|---|---|\n| xs | 3.1 |"), ("Figures", "![isoflop](fig.png)")],
                       year=2026, code_url="https://example.org/bench.git")
    assert text.index("## Leaderboard") < text.index("## Figures") < text.index("## Schema")
    assert "| xs | 3.1 |" in text and "![isoflop](fig.png)" in text
    assert f"git checkout {sha}" in text and "dvc repro" in text and "git clone https://example.org/bench.git" in text
    assert f"Schema version: **{schema.SCHEMA_VERSION}**" in text
    assert 'load_dataset("org/results", "runs", split="train")' in text and "duckdb" in text and "pd.read_parquet" in text
    assert "| chinchilla | val_loss/all | alpha | 0.3457 | 0.0154 | 0.317 – 0.373 | 240 |" in text
    assert "| `bleu` | nrefs:1\\|tok:13a |" in text
    bib = text[text.index("```bibtex") + 10:text.index("```", text.index("```bibtex") + 10)]
    assert bib.startswith("@misc{org_results_2026,") and bib.count("{") == bib.count("}")
    assert "year         = {2026}" in bib and sha in bib and "huggingface.co/datasets/org/results" in bib
    for column in card.COUNTING_COLUMNS:  # how N, D and C are counted, quoted from schema.py
        desc = next(c.description for c in schema.columns("runs") if c.name == column)
        assert f"**`{column}`**" in text and desc in text


def test_isoflop_section_gives_each_budget_its_minimum_or_says_there_is_none():
    from benchmark.scaling.engine import FitSettings, Points
    from benchmark.scaling.isoflop import fit_approach2
    from test_fitting import _parabola_budgets

    pts, truth = _parabola_budgets(0)
    fit = fit_approach2(pts, FitSettings(bootstrap=200, seed=0), tolerance=0.15)
    text = card.isoflop_section({"params": fit.params, "ci95": fit.ci95, "allocation": fit.allocation,
                                 "method": fit.method, "extrapolation": fit.extrapolation})
    assert text.startswith("3 of 4 IsoFLOP budgets have a loss minimum inside their sizes")
    lines = [ln for ln in text.splitlines() if ln.startswith("- C ≈ ")]
    assert len(lines) == 4 and "6 sizes, 12 runs" in lines[0]
    for ln, b in zip(lines[:3], fit.method["budgets"]):
        lo, hi = b["N_opt_ci95"]
        assert f"minimum inside, N_opt = {b['N_opt']:,.0f} [{lo:,.0f}, {hi:,.0f}]" in ln
    assert "**no minimum inside**" in lines[3]
    assert f"a = {fit.params['a']:.3g} [{fit.ci95['a'][0]:.3g}, {fit.ci95['a'][1]:.3g}]" in text
    assert card.isoflop_section(None).startswith("No Approach 2 fit")


def test_precision_section_reports_the_largest_points_worst_replicate_against_the_targets():
    from benchmark.scaling.quality import SE_TARGETS

    def run(rid, size, n, d, flops):
        return {"source": "local", "run_id": rid, "model_size": size, "n_params": n, "tokens": d, "flops": flops,
                "status": "completed"}

    # budget 1e12 (within 15 %): the largest N is m, replicated with D differing by packing; s at 2e11 is smaller
    runs = [run("s", "s", 1000, 1_000_000, 2e11), run("k", "k", 2000, 900_000, 1.05e12),
            run("m", "m", 5000, 330_000, 0.99e12), run("m-s1", "m", 5000, 330_010, 0.99e12)]
    rows = [{"run_id": rid, "metric": m, "task": t, "value": v, "stderr": se}
            for rid, m, t, v, se in [("m", "val_loss", "all", 1.00, 0.004), ("m-s1", "val_loss", "all", 0.90, 0.0054),
                                     ("m", "bleu", "translation", 20.0, 0.5), ("m-s1", "bleu", "translation", 21.0, 0.9),
                                     ("m", "accuracy", "classification", 60.0, 1.4),
                                     ("k", "accuracy", "classification", 90.0, 9.0)]]
    text = card.precision_section(runs, rows)
    assert text.startswith("Standard errors of the evaluation sets at the largest grid point, m at N=5,000, D=330,000 "
                           "(2 seeds; the largest error of its replicates).")
    assert "| val loss | all | 0.9 | 0.60 % | ≤ 0.5 % | **no** |" in text  # 0.0054 / 0.90 beats 0.004 / 1.00
    assert "| BLEU | translation | 21 | 0.90 | ≤ 0.7 | **no** |" in text
    assert "| accuracy (%) | classification | 60 | 1.40 | ≤ 1.5 | yes |" in text  # k is not the largest N
    assert "ROUGE" not in text  # no row where the metric was not scored
    assert SE_TARGETS["val_loss"] == ("relative", 0.005)
    assert card.precision_section([], rows).startswith("No completed local run")
