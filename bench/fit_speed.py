"""Speed of the fitting engine against the reference method, on the Chinchilla data, in one process.

Reference (Hoffmann et al. 2022 App. D.2 as replicated by Besiroglu et al. 2024): for each of the
4500 grid starts, scipy.optimize.minimize(method='L-BFGS-B', jac=True) on the summed Huber loss
(delta 1e-3) of log residuals, in the parameters (a, b, e, alpha, beta). The engine:
benchmark.scaling.engine.fit_point (batched L-BFGS over all starts, then a tight polish). Both optima are
scored with the same float64 reference objective. Also times the 4000-resample bootstrap.

BLAS runs single-threaded by default (--blas-threads 1): scipy's L-BFGS-B calls BLAS/LAPACK on
5x5 problems, and a multi-threaded OpenBLAS made each of its iterations ~100x slower (570 s instead
of 17 s for the loop) whenever another process held the second core. That would flatter the engine.

    python bench/fit_speed.py [--csv ../shared/data/chinchilla_svg_extracted.csv] [--starts-subset 450]
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "chinchilla_svg_extracted.csv"


def reference_objective(lN, lD, lL, delta=1e-3):
    """Summed Huber loss of log residuals and its gradient for one start x = (a, b, e, alpha, beta)."""
    import numpy as np

    def f(x):
        a, b, e, alpha, beta = x
        t = np.stack([a - alpha * lN, b - beta * lD, np.full_like(lN, e)])
        m = t.max(axis=0)
        # Floored at -600 so no subnormal numbers arise (x86 arithmetic on them is ~100x slower,
        # which would flatter the engine); exp(-600) is far below the sum's float64 resolution.
        ex = np.exp(np.maximum(t - m, -600.0))
        s = ex.sum(axis=0)
        r = m + np.log(s) - lL
        ar = np.abs(r)
        loss = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta)).sum()
        w = np.clip(r, -delta, delta) * ex / s
        grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * lN).sum(), -(w[1] * lD).sum()])
        return loss, grad
    return f


def hoffmann_grid():
    import numpy as np

    ab = np.arange(0.0, 30.0, 5.0)
    return np.array(list(itertools.product(ab, ab, np.arange(-1.0, 1.5, 0.5), np.arange(0.0, 2.5, 0.5), np.arange(0.0, 2.5, 0.5))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--starts-subset", type=int, default=0, help="run the scipy loop on this many sampled starts and scale its time to 4500 (0: all)")
    ap.add_argument("--repeats", type=int, default=3, help="engine fits timed; the fastest is reported")
    ap.add_argument("--bootstrap", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=None, help="engine threads (default: up to 4 cores)")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads for both (0: leave the environment alone)")
    args = ap.parse_args(argv)
    if args.blas_threads:  # must precede the first import of numpy
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    import numpy as np
    from scipy.optimize import minimize

    sys.path.insert(0, str(ROOT))
    from benchmark.scaling import engine as fitting
    from benchmark.sources.csv_points import read_points

    # Besiroglu et al. 2024 drop the 5 highest losses: 240 points remain; D = C / 6N.
    pts = read_points(args.csv, "Model Size", "loss", flops_col="Training FLOP", drop_highest_loss=5)
    lN, lD, lL = np.log(pts.N), np.log(pts.D), np.log(pts.y)
    ref = reference_objective(lN, lD, lL)
    settings = fitting.FitSettings(bootstrap=args.bootstrap, threads=args.threads)
    from benchmark.scaling.objectives import default_threads

    print(f"data: {pts.n} points; cpus: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}; "
          f"engine threads: {args.threads or default_threads()}; BLAS threads: {args.blas_threads or 'default'}")

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        point = fitting.fit_point("chinchilla", pts, settings)
        times.append(time.perf_counter() - t0)
    p = point.params
    x_engine = np.array([np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]])
    f_engine = ref(x_engine)[0]
    t_engine = min(times)
    print(f"engine: 4500-start fit {t_engine:.3f} s (fastest of {args.repeats}: {', '.join(f'{t:.3f}' for t in times)})")

    grid = hoffmann_grid()
    if args.starts_subset:
        grid = grid[np.sort(np.random.default_rng(0).choice(len(grid), args.starts_subset, replace=False))]
    t0 = time.perf_counter()
    best = None
    for x0 in grid:
        r = minimize(ref, x0, jac=True, method="L-BFGS-B")
        if np.isfinite(r.fun) and (best is None or r.fun < best.fun):
            best = r
    t_loop = time.perf_counter() - t0
    t_loop_full = t_loop * 4500 / len(grid)
    scaled = "" if len(grid) == 4500 else f" (measured {t_loop:.2f} s on {len(grid)} starts, scaled to 4500)"
    print(f"scipy loop: {len(grid)} x L-BFGS-B {t_loop_full:.2f} s{scaled}")
    print(f"speed-up: {t_loop_full / t_engine:.1f}x")

    def show(name, f, x):
        A, B, E = np.exp(x[:3])
        print(f"  {name:<7} objective {f:.15g}  E={E:.6f} A={A:.4f} B={B:.4f} alpha={x[3]:.6f} beta={x[4]:.6f}")
    print("optima (scored by the same float64 objective):")
    show("engine", f_engine, x_engine)
    show("scipy", best.fun, best.x)
    print(f"engine objective {'<=' if f_engine <= best.fun else '>'} scipy loop's (difference {f_engine - best.fun:.3g})")

    t0 = time.perf_counter()
    samples, used, degenerate = fitting.bootstrap("chinchilla", pts, point, settings)
    t_boot = time.perf_counter() - t0
    se, _ = fitting.summarise(samples)
    print(f"bootstrap: {args.bootstrap} resamples in {t_boot:.2f} s ({used} used, {degenerate} degenerate); "
          + ", ".join(f"SE {k}={se[k]:.4g}" for k in ("E", "A", "B", "alpha", "beta")))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
