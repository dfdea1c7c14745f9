"""A law's formula lives once, in benchmark.scaling.laws.LAWS: every fitting parameterisation (benchmark.scaling.objectives)
predicts what the registry's function predicts at the same public parameters."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.scaling import laws, objectives
from benchmark.scaling.laws import LAWS


def _inputs(rng, n=7):
    N = np.geomspace(1e6, 1e9, n) * rng.uniform(0.8, 1.2, n)
    D = np.geomspace(1e8, 1e11, n)[::-1] * rng.uniform(0.8, 1.2, n)
    return {"N": N, "D": D, "C": 6 * N * D, "L": rng.uniform(2.0, 4.0, n)}


@pytest.mark.parametrize("law", [law for law in LAWS if law != "chinchilla"])
def test_parameterisation_predicts_the_registry_formula(law):
    rng = np.random.default_rng(0)
    x = _inputs(rng)
    model = objectives.make_model(law, **x)
    spec = LAWS[law]
    assert set(model.to_public(model.starts(np.full(7, 1.0))[:1])) == set(spec.params)
    th = model.starts(np.linspace(0.5, 1.5, 7))[:5] * rng.uniform(0.9, 1.1)
    pred, _ = model.pred_jac(th)
    pub = model.to_public(th)
    for i in range(th.shape[0]):
        public = {k: float(v[i]) for k, v in pub.items()}
        want = spec.predict(public, **{k: x[k] for k in spec.inputs})
        want = np.log(want) if spec.space == "log" else want
        np.testing.assert_allclose(pred[i], want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(model.from_public(public), th[i], rtol=1e-9, atol=1e-9)


def test_chinchilla_parameterisation_predicts_the_registry_formula():
    """Chinchilla evaluates its prediction inside the loss: with one point, target log L = -100 and no
    Huber clipping, the summed loss is (log L_hat + 100)^2 / 2."""
    rng = np.random.default_rng(1)
    x = _inputs(rng)
    public = {"E": 1.7, "A": 410.0, "B": 400.0, "alpha": 0.34, "beta": 0.28}
    for i in range(7):
        model = objectives.make_model("chinchilla", N=x["N"][i:i + 1], D=x["D"][i:i + 1])
        th = model.from_public(public)[None, :]
        f, g = np.empty(1), np.empty((1, 5))
        model.loss_grad(th, np.array([-100.0]), None, np.inf, 1.0, f, g)
        log_pred = np.sqrt(2 * f[0]) - 100.0
        want = np.log(LAWS["chinchilla"].predict(public, N=x["N"][i], D=x["D"][i]))
        assert log_pred == pytest.approx(want, rel=1e-10)
        assert {k: float(v[0]) for k, v in model.to_public(th).items()} == pytest.approx(public, rel=1e-12)


def test_every_registered_law_has_bounds_parameterisation_and_citation():
    assert set(objectives.PARAMETERISATIONS) == set(LAWS)
    for name, spec in LAWS.items():
        assert set(spec.bounds) == set(spec.params) and spec.formula and spec.citation
        assert set(spec.inputs) <= {"N", "D", "C", "L"} and set(spec.min_distinct) <= set(spec.inputs)
    hoffmann = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    assert LAWS["chinchilla"].outside(hoffmann) == []
    assert LAWS["chinchilla"].outside({**hoffmann, "alpha": -0.1}) == ["alpha"]
    with pytest.raises(ValueError, match="no objective"):
        objectives.make_model("approach2", N=np.ones(3))
    assert laws.logistic(0.0) == 0.5
