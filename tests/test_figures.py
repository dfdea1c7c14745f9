"""The downstream figure: a curve that the first panel's legend does not name is named in its own panel."""
from __future__ import annotations

import numpy as np


def test_downstream_names_a_not_identified_curve_in_its_own_panel():
    from benchmark.reporting import figures

    panels = [(m.name, m.headline_task) for m in figures.downstream_metrics()]
    runs = [{"run_id": f"{s}-{i}", "model_size": s, "n_params": n, "tokens": 1000 * (i + 1), "flops": 6.0 * n * 1000 * (i + 1)}
            for s, n in (("a", 100), ("b", 200)) for i in range(3)]
    values = {(r["run_id"], task, metric): 10.0 + i for i, r in enumerate(runs) for metric, task in panels}
    fn = lambda C: 10.0 + np.log10(C)  # noqa: E731
    curves = {panels[0]: [("sigmoid of log C", fn)], panels[1]: [("sigmoid of log C", fn)],
              panels[2]: [("sigmoid of log C (not identified)", fn)]}
    fig = figures.downstream(runs, values, curves, cutoff=None)
    legends = [ax.get_legend() for ax in fig.axes]
    assert "sigmoid of log C" in [t.get_text() for t in legends[0].get_texts()]
    assert legends[1] is None  # everything it draws is named in the first panel's legend
    assert [t.get_text() for t in legends[2].get_texts()] == ["sigmoid of log C (not identified)"]
