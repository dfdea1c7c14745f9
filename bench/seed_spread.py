"""Seed spread of one grid point: the real train stage under several seeds, then each model's validation loss
(per task and overall, the evaluate stage's definition), and the relative std of the overall loss over seeds, with
its 95 % interval (benchmark.results.points.std_interval), beside issue 13's target
(benchmark.scaling.quality.SEED_REL_TARGET). Recipe variants are params overrides, so a change of batch, learning
rate, warm-up or schedule can be measured at a point before it goes into params.yaml.

    python bench/seed_spread.py --point d64-c3                                  # seeds 0 1 2 of a params.yaml run
    python bench/seed_spread.py --point d48-c3 --set train.warmup_fraction=0.2 --seeds 0 1 2 3 4
    python bench/seed_spread.py --point d48-c3 --set model.sizes.d48.lr=5e-3 --out /tmp/lr05

`--data` is a prepared data folder (default `data/`, what `dvc repro` made). Each run trains on `--threads` CPU
threads (default 1) and `--jobs` runs go at once (default 2): the losses depend on the thread count (floating-point
order), not on the load, so timings beside other work are meaningless here but the losses are not. The runs are kept
in `--out`; a run whose `val.json` exists is not trained again. The last line is
`point=<id> seeds=<k> mean=<loss> rel_std=<fraction>`.

`--parts` also reads each model's validation loss by skill (benchmark.training.validation.losses_by_part: per task,
per difficulty level and, for summaries, per fact) and prints where the spread comes from: each part's share of the
validation tokens, its mean loss and relative std over seeds, and the relative std the overall loss would have if only
that part varied ("alone" = share x std / overall mean).

    python bench/seed_spread.py --point d16-c1 --seeds 0 1 2 3 4 --parts

`--pool DIR [DIR ...]` trains nothing: it reads the runs kept in earlier `--out` folders (each `<point>-seed<k>/val.json`;
one point's seeds may lie in several folders), prints each point's spread and pools them into one spread with its
interval and Bartlett's test that every point shares it (benchmark.results.points.pooled_spread).

    python bench/seed_spread.py --pool /tmp/spread/d12-c0 /tmp/spread/d64-c3 /tmp/more/d64-c3
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _override(tree: dict, assignment: str) -> None:
    """KEY.PATH=VALUE (VALUE read as YAML) into the params tree; the key path must exist up to its parent."""
    import yaml

    key, sep, raw = assignment.partition("=")
    if not sep:
        raise SystemExit(f"--set {assignment!r}: expected KEY.PATH=VALUE")
    *parents, leaf = key.split(".")
    node = tree
    for k in parents:
        if not isinstance(node.get(k), dict):
            raise SystemExit(f"--set {assignment!r}: params has no section {key.rsplit('.', 1)[0]!r}")
        node = node[k]
    node[leaf] = yaml.safe_load(raw)


def _validate(params_file: str, data: str, run_dir: str) -> None:
    """Print one JSON line: {task: [loss, se], 'all': [loss, se]} of the trained model in run_dir (batched as
    params' evaluate.batch_size, as the evaluate stage batches)."""
    import torch
    import yaml
    from transformers import LlamaForCausalLM

    from benchmark.evaluation.metrics import token_weighted_loss
    from benchmark.training import corpus as corpus_mod
    from benchmark.training.validation import validation_loss

    corpus = corpus_mod.load(Path(data))
    net = LlamaForCausalLM.from_pretrained(Path(run_dir) / "model", torch_dtype=torch.float32).eval()
    batch = yaml.safe_load(Path(params_file).read_text())["evaluate"]["batch_size"]
    out, S, C, T = {}, [], [], []
    for task in corpus.task_names:
        s, c = validation_loss(net, corpus, task, batch, "cpu")
        out[task] = token_weighted_loss(s, c)
        S, C, T = S + s, C + c, T + [task] * len(s)
    out["all"] = token_weighted_loss(S, C, strata=T)
    print(json.dumps(out))


def _parts(data: str, run_dir: str) -> None:
    """Print one JSON line: {task: {"level k" | "part <name>": [summed loss, scored tokens]}} of the model in run_dir."""
    import torch
    from transformers import LlamaForCausalLM

    from benchmark.training import corpus as corpus_mod
    from benchmark.training.validation import losses_by_part

    corpus = corpus_mod.load(Path(data))
    net = LlamaForCausalLM.from_pretrained(Path(run_dir) / "model", torch_dtype=torch.float32).eval()
    print(json.dumps({task: losses_by_part(net, corpus, task, 64, "cpu") for task in corpus.task_names}))


_BAR = re.compile(r"^.*?\d+%\|[^|]*\|[^\]]*\]")  # "<desc>:  78%|███▋  | 1.62M/2.06M [01:56<00:41, 10.8ktok/s]"


def error_tail(stderr: str, lines: int = 15) -> str:
    """The last lines of a child's stderr without its progress bars (tqdm redraws a bar with carriage returns, and an
    error printed while a bar is open shares its line), so that the bar does not crowd out the error."""
    pieces = [_BAR.sub("", piece) for piece in re.split(r"[\r\n]", stderr)]
    return "\n".join([piece for piece in pieces if piece.strip()][-lines:])


def _child(argv: list[str], threads: int, run_id: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads)}
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{run_id}: {' '.join(argv[1:4])} failed:\n{error_tail(r.stderr)}")
    return r.stdout.strip().splitlines()[-1]


def _run(params_file: Path, data: Path, out: Path, run_id: str, threads: int, parts: bool) -> tuple[dict, dict | None]:
    folder = out / run_id
    done, by_part = folder / "val.json", folder / "parts.json"
    if not done.exists():
        _child([sys.executable, "-m", "benchmark", "train", run_id, "--params", str(params_file), "--data", str(data),
                "--out", str(folder), "--no-resume"], threads, run_id)
        done.write_text(_child([sys.executable, __file__, "--_validate", str(params_file), str(data), str(folder)],
                               threads, run_id))
    if parts and not by_part.exists():
        by_part.write_text(_child([sys.executable, __file__, "--_parts", str(data), str(folder)], threads, run_id))
    return json.loads(done.read_text()), (json.loads(by_part.read_text()) if parts else None)


def where_from(parts: list[dict], overall: list[float]) -> list[str]:
    """Lines of the --parts table from each seed's losses by part and its overall loss (see the module's doc)."""
    mean_all = statistics.mean(overall)
    total = sum(sum(n for key, (_, n) in by.items() if key.startswith("level")) for by in parts[0].values())
    lines = [f"{'task / part':<30} {'share':>7} {'mean':>8} {'rel std':>8} {'alone':>7}"]

    def row(label: str, pairs: list[tuple[float, int]]) -> str:
        losses, n = [s / c for s, c in pairs], pairs[0][1]
        mean = statistics.mean(losses)
        std = statistics.stdev(losses) if len(losses) > 1 else float("nan")
        return (f"{label:<30} {100 * n / total:6.1f}% {mean:8.4f} {100 * std / mean:7.2f}% "
                f"{100 * (n / total) * std / mean_all:6.2f}%")

    for task in parts[0]:
        levels = [key for key in parts[0][task] if key.startswith("level")]
        lines.append(row(task, [(sum(by[task][k][0] for k in levels), sum(by[task][k][1] for k in levels))
                                for by in parts]))
        lines += [row("  " + key, [tuple(by[task][key]) for by in parts]) for key in parts[0][task]]
    return lines


def pool_folders(folders: list[Path]) -> int:
    """Print each point's seed spread from the runs kept in `folders` and the pooled spread (see the module's doc)."""
    from benchmark.results.points import STD_LEVEL, point_stats, pooled_spread
    from benchmark.scaling.quality import SEED_REL_TARGET

    losses: dict[str, dict[str, float]] = {}
    for folder in folders:
        found = sorted(folder.glob("*-seed*/val.json"))
        if not found:
            raise SystemExit(f"{folder}: no <point>-seed<k>/val.json (an --out folder of this script)")
        for f in found:
            point, seed = f.parent.name.rsplit("-seed", 1)
            losses.setdefault(point, {})[seed] = json.loads(f.read_text())["all"][0]
    rows = []
    for point, by_seed in sorted(losses.items()):
        st = point_stats(list(by_seed.values()))
        rows.append((st["n_seeds"], st["rel_std"]))
        spread = ("one seed" if st["rel_std"] is None else
                  f"{100 * st['rel_std']:.2f} % [{100 * st['rel_std_low']:.2f}, {100 * st['rel_std_high']:.2f}]")
        print(f"{point}: {st['n_seeds']} seeds, mean {st['mean']:.4f}, relative std {spread}")
    pooled = pooled_spread(rows)
    if pooled["rel_std"] is None:
        raise SystemExit("no point has 2 seeds: nothing to pool")
    p = pooled["homogeneity_p"]
    print(f"pooled over {pooled['n_points']} points ({pooled['df']} degrees of freedom): relative std "
          f"{100 * pooled['rel_std']:.3f} %, {100 * STD_LEVEL:g} % interval {100 * pooled['rel_std_low']:.3f}-"
          f"{100 * pooled['rel_std_high']:.3f} % against the {100 * SEED_REL_TARGET:g} % target; Bartlett's test that "
          f"every point shares it: p = {'–' if p is None else f'{p:.3g}'}")
    print(f"pooled points={pooled['n_points']} df={pooled['df']} rel_std={pooled['rel_std']:.6f} "
          f"low={pooled['rel_std_low']:.6f} high={pooled['rel_std_high']:.6f} homogeneity_p={p}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--point", help="a run of params' grid (required): its size and tokens are the point")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="params override (YAML value)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="where the runs are kept (default: a new temporary folder)")
    ap.add_argument("--parts", action="store_true", help="also print where the spread comes from (task, level, part)")
    ap.add_argument("--pool", type=Path, nargs="+", metavar="DIR", help="pool the runs kept in these --out folders")
    ap.add_argument("--_validate", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_parts", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._validate:
        _validate(*args._validate)
        return 0
    if args._parts:
        _parts(*args._parts)
        return 0
    if args.pool:
        return pool_folders(args.pool)
    if not args.point:
        ap.error("--point is required (or --pool)")
    import yaml

    from benchmark.results.points import STD_LEVEL, std_interval
    from benchmark.scaling.quality import SEED_REL_TARGET

    tree = yaml.safe_load(args.params.read_text())
    if args.point not in tree.get("runs", {}):
        raise SystemExit(f"{args.params}: runs has no {args.point!r}")
    for a in args.set:
        _override(tree, a)
    base = tree["runs"][args.point]
    tree["runs"] = {f"{args.point}-seed{s}": {"size": base["size"], "tokens": base["tokens"], "seed": s} for s in args.seeds}
    out = args.out or Path(tempfile.mkdtemp(prefix="seed_spread_"))
    out.mkdir(parents=True, exist_ok=True)
    params_file = out / "params.yaml"
    params_file.write_text(yaml.safe_dump(tree, sort_keys=False))
    print(f"{args.point}: size {base['size']}, {base['tokens']:,} tokens, seeds {args.seeds}, overrides {args.set or 'none'}, "
          f"{args.threads} thread(s) per run, runs in {out}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {rid: pool.submit(_run, params_file, args.data, out, rid, args.threads, args.parts)
                   for rid in tree["runs"]}
        losses, parts = [], []
        for rid, fut in futures.items():
            res, by_part = fut.result()
            parts.append(by_part)
            losses.append(res["all"][0])
            print(f"{rid}: val loss {res['all'][0]:.4f} ± {res['all'][1]:.4f} | " +
                  " ".join(f"{t} {v[0]:.4f}" for t, v in res.items() if t != "all"), flush=True)
    if args.parts:
        print("where the spread comes from (share of the validation tokens; alone: the relative std of the overall loss "
              "if only this part varied):")
        print("\n".join(where_from(parts, losses)))
    mean = statistics.mean(losses)
    rel = statistics.stdev(losses) / mean if len(losses) > 1 else float("nan")
    verdict = ("a spread needs 2 seeds: no verdict on" if len(losses) < 2 else
               "within" if rel <= SEED_REL_TARGET else "over")
    interval = ""
    if len(losses) > 1:
        low, high = std_interval(rel, len(losses))
        said = ("rules the target out" if low > SEED_REL_TARGET else "rules it in" if high <= SEED_REL_TARGET
                else "cannot tell")
        interval = f"; {100 * STD_LEVEL:g} % interval {100 * low:.2f}-{100 * high:.2f} %: {said}"
    print(f"seed spread: mean {mean:.4f}, relative std {100 * rel:.2f} % over {len(losses)} seeds ({verdict} the "
          f"{100 * SEED_REL_TARGET:g} % target{interval})")
    print(f"point={args.point} seeds={len(losses)} mean={mean:.6f} rel_std={rel:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
