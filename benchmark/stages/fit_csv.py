"""Command `fit-csv`: fit the Chinchilla law to published points in a CSV (e.g. Hoffmann et al.'s Fig. 4 as
extracted by Besiroglu et al. 2024) and write the fits.json shape of the fit stage.

    python -m benchmark fit-csv ../shared/data/chinchilla_svg_extracted.csv --n-col "Model Size" \\
        --flops-col "Training FLOP" --loss-col loss --drop-highest-loss 5 --out fits.json

Tokens come from --tokens-col, else D = C / (6 N) (Hoffmann et al. 2022, Sec. 3).
"""
from __future__ import annotations

import sys


from benchmark import cli
from benchmark.results.io import write_json_atomic
from benchmark.scaling.engine import FitSettings, fit
from benchmark.sources.csv_points import read_points


def main(argv: list[str]) -> int:
    ap = cli.parser("fit-csv", __doc__)
    ap.add_argument("path", help="CSV file with one row per training run")
    ap.add_argument("--n-col", required=True, help="column with parameters N")
    ap.add_argument("--loss-col", required=True, help="column with the final loss")
    ap.add_argument("--flops-col", help="column with training FLOPs C")
    ap.add_argument("--tokens-col", help="column with training tokens D (default: C / 6N)")
    ap.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                    help="drop the K highest-loss rows (Besiroglu et al. 2024 drop 5)")
    ap.add_argument("--bootstrap", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--huber-delta", type=float, default=1e-3)
    ap.add_argument("--holdout", type=float, default=0.2, help="fraction of largest-compute rows held out")
    ap.add_argument("--allocation-flops", type=float, default=None, help="C for N_opt, D_opt (default: largest C)")
    ap.add_argument("--target", default="loss", help="name written as the fit's target")
    ap.add_argument("--out", required=True, help="JSON file to write (a list with one fit)")
    args = ap.parse_args(argv)
    pts = read_points(args.path, args.n_col, args.loss_col, args.flops_col, args.tokens_col, args.drop_highest_loss)
    settings = FitSettings(delta=args.huber_delta, bootstrap=args.bootstrap, seed=args.seed,
                           holdout_fraction=args.holdout, allocation_flops=args.allocation_flops)
    result = fit("chinchilla", pts, settings, target=args.target)
    write_json_atomic(args.out, [result.to_json()])
    p = result.params
    print(f"chinchilla on {pts.n} points: E={p['E']:.4f} A={p['A']:.2f} B={p['B']:.2f} alpha={p['alpha']:.4f} "
          f"beta={p['beta']:.4f} a={result.allocation['a']:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
