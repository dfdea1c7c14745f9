"""Published scaling-law parameters, with citations, as rows of the schema's `literature` table."""
from __future__ import annotations

import math

CITATIONS = {
    "kaplan2020": "Kaplan, McCandlish, Henighan, Brown, Chess, Child, Gray, Radford, Wu, Amodei. "
                  "Scaling Laws for Neural Language Models. arXiv:2001.08361, 2020.",
    "hoffmann2022": "Hoffmann, Borgeaud, Mensch, Buchatskaya, Cai, Rutherford, et al. "
                    "Training Compute-Optimal Large Language Models. NeurIPS 2022, arXiv:2203.15556.",
    "besiroglu2024": "Besiroglu, Erdil, Barnett, You. Chinchilla Scaling: A replication attempt. "
                     "Epoch AI, arXiv:2404.10102, 2024.",
    "muennighoff2023": "Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel. "
                       "Scaling Data-Constrained Language Models. NeurIPS 2023, arXiv:2305.16264.",
    "dubey2024": "Dubey, Jauhri, Pandey, et al. (Llama Team, AI @ Meta). The Llama 3 Herd of Models. arXiv:2407.21783, 2024.",
}

# (source, law, parameter, value, note). Laws are named as in benchmark.scaling.laws / fits.law.
ROWS: list[tuple[str, str, str, float, str]] = [
    ("kaplan2020", "kaplan_n", "alpha_N", 0.076, "eq. 1.1 (Sec. 1.2); N counts non-embedding parameters, models trained to convergence"),
    ("kaplan2020", "kaplan_n", "N_c", 8.8e13, "eq. 1.1; non-embedding parameters; loss in nats/token on WebText2"),
    ("kaplan2020", "kaplan_d", "alpha_D", 0.095, "eq. 1.2 (Sec. 1.2); large models with early stopping"),
    ("kaplan2020", "kaplan_d", "D_c", 5.4e13, "eq. 1.2; tokens"),
    ("kaplan2020", "kaplan_nd", "alpha_N", 0.076, "eq. 1.5 / 4.1, Table 2 (fit of L(N, D))"),
    ("kaplan2020", "kaplan_nd", "alpha_D", 0.103, "eq. 1.5 / 4.1, Table 2"),
    ("kaplan2020", "kaplan_nd", "N_c", 6.4e13, "eq. 1.5 / 4.1, Table 2; non-embedding parameters"),
    ("kaplan2020", "kaplan_nd", "D_c", 1.8e13, "eq. 1.5 / 4.1, Table 2; tokens"),
    ("kaplan2020", "kaplan_allocation", "a", 0.73, "Sec. 1.2 / Sec. 6: compute-efficient N grows as C_min^0.73"),
    ("hoffmann2022", "chinchilla", "E", 1.69, "Approach 3, Sec. 3.3 (and App. D.2); fitted on their own runs, not the published figure"),
    ("hoffmann2022", "chinchilla", "A", 406.4, "Approach 3, Sec. 3.3"),
    ("hoffmann2022", "chinchilla", "B", 410.7, "Approach 3, Sec. 3.3"),
    ("hoffmann2022", "chinchilla", "alpha", 0.34, "Approach 3, Sec. 3.3"),
    ("hoffmann2022", "chinchilla", "beta", 0.28, "Approach 3, Sec. 3.3"),
    ("hoffmann2022", "chinchilla", "a", 0.46, "Table 2, Approach 3: N_opt ∝ C^a"),
    ("hoffmann2022", "approach1", "a", 0.50, "Table 2, Approach 1 (minimum over training curves)"),
    ("hoffmann2022", "approach2", "a", 0.49, "Table 2, Approach 2 (IsoFLOP profiles)"),
    ("besiroglu2024", "chinchilla", "E", 1.817, "refit of Hoffmann et al.'s Fig. 4 data (240 points), bootstrap SE 0.026"),
    ("besiroglu2024", "chinchilla", "A", 482.01, "bootstrap SE 124.52"),
    ("besiroglu2024", "chinchilla", "B", 2085.43, "bootstrap SE 1293.28"),
    ("besiroglu2024", "chinchilla", "alpha", 0.3478, "bootstrap SE 0.0154"),
    ("besiroglu2024", "chinchilla", "beta", 0.3658, "bootstrap SE 0.0206"),
    ("besiroglu2024", "chinchilla", "a", 0.513, "beta / (alpha + beta) of the refit"),
    ("muennighoff2023", "chinchilla", "E", math.exp(0.6254804), "E = exp(0.6254804) ≈ 1.87: the Chinchilla-form part of their data-constrained law fitted on their runs (with R_N* = 5.31, R_D* = 15.39)"),
    ("muennighoff2023", "chinchilla", "A", math.exp(6.255414), "A = exp(6.255414) ≈ 521"),
    ("muennighoff2023", "chinchilla", "B", math.exp(7.3049974), "B = exp(7.3049974) ≈ 1488"),
    ("muennighoff2023", "chinchilla", "alpha", 0.3526596, "alpha ≈ 0.35; the paper fits alpha and beta to the same value"),
    ("muennighoff2023", "chinchilla", "beta", 0.3526596, "beta ≈ 0.353, equal to alpha; a value of 0.37 that circulates does not match the paper's fit as far as we could check"),
    ("dubey2024", "compute_optimal_tokens", "alpha", 0.53, "Sec. 3.2.1: optimal training tokens D_opt = A C^alpha (the paper writes N*(C) for tokens), IsoFLOP minima 6e18-1e22 FLOPs"),
    ("dubey2024", "compute_optimal_tokens", "A", 0.29, "Sec. 3.2.1: D_opt = A C^alpha"),
]


def rows() -> list[dict]:
    """The literature table's rows (see benchmark.results.schema.TABLES['literature'])."""
    return [{"source": src, "citation": CITATIONS[src], "law": law, "parameter": p, "estimate": float(v), "note": note}
            for src, law, p, v, note in ROWS]
