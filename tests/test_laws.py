"""Law formulas against numbers checkable by hand, and their limits."""
import inspect
import math

import numpy as np
import pytest

from benchmark.scaling import laws


def test_chinchilla_by_hand():
    # 1 + 1/2 + 1/4
    assert laws.chinchilla(2.0, 4.0, E=1.0, A=1.0, B=1.0, alpha=1.0, beta=1.0) == pytest.approx(1.75)
    # Hoffmann et al. 2022 at Chinchilla's size (70e9 params, 1.4e12 tokens): about 1.94 nats
    L = laws.chinchilla(70e9, 1.4e12, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    assert L == pytest.approx(1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28)
    assert 1.9 < L < 2.0


def test_kaplan_by_hand_and_limits():
    assert laws.kaplan_n(8.8e13, N_c=8.8e13, alpha_N=0.076) == pytest.approx(1.0)
    assert laws.kaplan_n(25.0, N_c=100.0, alpha_N=0.5) == pytest.approx(2.0)   # (100/25)^0.5
    assert laws.kaplan_d(1.0, D_c=8.0, alpha_D=1 / 3) == pytest.approx(2.0)    # 8^(1/3)
    p = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    # infinite data: L(N, D) -> L(N); infinite parameters: L(N, D) -> L(D) (Kaplan et al. 2020, eq. 1.5)
    assert laws.kaplan_nd(1e8, 1e300, **p) == pytest.approx(laws.kaplan_n(1e8, N_c=6.4e13, alpha_N=0.076), rel=1e-12)
    assert laws.kaplan_nd(1e300, 1e9, **p) == pytest.approx(laws.kaplan_d(1e9, D_c=1.8e13, alpha_D=0.103), rel=1e-12)


def test_seed_law_terms():
    assert laws.seed_law(3.0, 5.0, a=1, b=0, c=0, gamma=0, delta=1, epsilon=1) == pytest.approx(3.0)
    assert laws.seed_law(3.0, 5.0, a=0, b=2, c=0, gamma=0, delta=1, epsilon=1) == pytest.approx(10.0)
    assert laws.seed_law(3.0, 5.0, a=0, b=0, c=1, gamma=0, delta=1, epsilon=1) == pytest.approx(90.0)  # C = 6ND


def test_sigmoids_midpoint_and_direction():
    p = dict(lo=10.0, hi=90.0, k=2.0)
    assert laws.sigmoid_compute(1e18, C_mid=1e18, **p) == pytest.approx(50.0)
    assert laws.sigmoid_compute(1e24, C_mid=1e18, **p) == pytest.approx(90.0, abs=1e-6)
    assert laws.sigmoid_compute(1e6, C_mid=1e18, **p) == pytest.approx(10.0, abs=1e-6)
    assert laws.sigmoid_loss(3.0, L_mid=3.0, **p) == pytest.approx(50.0)
    assert laws.sigmoid_loss(2.0, L_mid=3.0, **p) > laws.sigmoid_loss(4.0, L_mid=3.0, **p)  # lower loss, better metric
    assert np.isfinite(laws.sigmoid_loss(np.array([-1e6, 1e6]), L_mid=3.0, **p)).all()


def test_allocation_is_the_isoflop_minimum():
    p = dict(A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)  # Besiroglu et al. 2024
    C = 5.76e23
    al = laws.chinchilla_allocation(C, **p)
    assert al["a"] == pytest.approx(0.3658 / (0.3478 + 0.3658))
    assert al["a"] + al["b"] == pytest.approx(1.0)
    assert 6 * al["N_opt"] * al["D_opt"] == pytest.approx(C)
    loss = lambda n: laws.chinchilla(n, C / (6 * n), E=1.817, **p)  # noqa: E731
    assert loss(al["N_opt"]) < loss(al["N_opt"] * 1.05) and loss(al["N_opt"]) < loss(al["N_opt"] / 1.05)
    assert laws.chinchilla_allocation(C, A=406.4, B=410.7, alpha=0.34, beta=0.28)["a"] == pytest.approx(0.4516, abs=1e-4)


def test_group_budgets_with_tolerance():
    C = np.array([2.2, 1.0, 5.0, 1.1, 2.0, 1.05])
    groups = [sorted(g.tolist()) for g in laws.group_budgets(C, tolerance=0.15)]
    assert groups == [[1, 3, 5], [0, 4], [2]]
    assert [len(g) for g in laws.group_budgets(C, tolerance=0.0)] == [1] * 6


def test_isoflop_minimum_and_power_law():
    N = np.logspace(7, 9, 9)
    L = 2.0 + 0.1 * (np.log(N) - np.log(1e8)) ** 2
    assert laws.isoflop_minimum(N, L) == pytest.approx(1e8, rel=1e-9)
    assert math.isnan(laws.isoflop_minimum(N, -L))  # opens downward: no minimum
    C = np.logspace(18, 22, 5)
    a, k = laws.power_law_exponent(C, 0.1 * C**0.5)
    assert (a, k) == (pytest.approx(0.5), pytest.approx(0.1))


@pytest.mark.parametrize("name", sorted(laws.LAWS))
def test_registry_matches_signatures(name):
    law = laws.LAWS[name]
    sig = inspect.signature(law.fn)
    assert [p for p in sig.parameters if sig.parameters[p].kind is inspect.Parameter.KEYWORD_ONLY] == list(law.params)
    assert [p for p in sig.parameters if sig.parameters[p].kind is not inspect.Parameter.KEYWORD_ONLY] == list(law.inputs)
    assert law.citation and law.formula


def test_literature_rows_are_valid_and_unique():
    from benchmark.scaling import literature
    from benchmark.results import schema

    rows = [schema.validate_record("literature", r) for r in literature.rows()]
    keys = [(r["source"], r["law"], r["parameter"]) for r in rows]
    assert len(set(keys)) == len(keys)  # benchmark.stages.pull merges literature on this key
    assert all(r["note"] and r["citation"] for r in rows)
    assert all(r["law"] in laws.LAWS or r["law"] in ("approach1", "approach2", "kaplan_allocation", "compute_optimal_tokens")
               for r in rows)
    est = {k: r["estimate"] for k, r in zip(keys, rows)}
    assert est[("besiroglu2024", "chinchilla", "B")] == 2085.43 and est[("hoffmann2022", "chinchilla", "E")] == 1.69
    assert est[("muennighoff2023", "chinchilla", "A")] == pytest.approx(521, abs=1)
