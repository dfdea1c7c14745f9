"""`python -m benchmark launch`: run every stale grid point as its own job (local processes or SLURM), then collect/fit/report.

Stale upstream stages (`prepare`, ...) run first with `dvc repro`. Each point that `dvc status`
reports runs its stale stages (train -> evaluate) as one job; a finished point is
recorded at once with `dvc commit` of exactly those stages (after checking that their inputs did
not change meanwhile), so a relaunch after a crash, a kill or a failure runs only the points that
did not finish. When every point is done, `dvc repro` runs the downstream stages, after which
`dvc status` is clean. Logs and job states live in `.dvc/tmp/launch/`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmark.launching import dvc as launch_dvc
from benchmark.launching.dvc import LaunchError
from benchmark.launching.job import JobSpec, local_pool, read_state
from benchmark.launching.table import Table, tokens_per_s
from benchmark.results.transaction import process_alive


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise LaunchError(f"{flag} {v!r}: expected KEY=VALUE")
        k, val = v.split("=", 1)
        out[k] = val
    return out


def _sizes(root: Path) -> dict[str, str]:
    """run id -> size name, from params.yaml (for per-size GPU counts)."""
    import yaml

    try:
        raw = yaml.safe_load((root / "params.yaml").read_text()) or {}
    except FileNotFoundError:
        return {}
    return {k: str(v.get("size")) for k, v in (raw.get("runs") or {}).items() if isinstance(v, dict)}


def largest_first(root: Path, todo: list) -> list:
    """The points in the order they start: the largest estimated cost first (6ND plus attention FLOPs, from
    benchmark.config.grid), grid order among equals. With fewer slots than points the longest jobs then
    start first and the last to end is a short one (LPT scheduling, Graham 1969). A params.yaml that is not
    this benchmark's (a toy pipeline) keeps the grid order."""
    from benchmark.config import grid, params

    try:
        cost = {q.run_id: q.flops_attention for q in grid.points(params.load(str(root / "params.yaml")))}
    except params.ParamsError:
        return list(todo)
    return sorted(todo, key=lambda p: -cost.get(p.key, 0.0))


def _n_gpus() -> int:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def slurm_params(args, gpus: int) -> dict:
    """submitit SlurmExecutor parameters of one point's job."""
    params = {"nodes": 1, "ntasks_per_node": 1, "time": args.time_min, "signal_delay_s": args.signal_delay_s,
              "cpus_per_task": args.cpus_per_point, "stderr_to_stdout": True}
    if gpus:
        params["gpus_per_node"] = gpus
    for key, flag in (("partition", args.partition), ("account", args.account), ("qos", args.qos)):
        if flag:
            params[key] = flag
    if args.mem_gb:
        params["mem"] = f"{args.mem_gb}GB"
    extra = _pairs(args.slurm_param, "--slurm-param")
    if extra:
        params["additional_parameters"] = extra
    return params


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmark launch", description=__doc__.splitlines()[0])
    ap.add_argument("--executor", choices=("local", "slurm"), default="local")
    ap.add_argument("--jobs", type=int, default=None, help="local: points at once (default: one per free GPU, else 1)")
    ap.add_argument("--root", default=".", help="the repository (dvc.yaml) root")
    ap.add_argument("--gpus-per-point", type=int, default=None,
                    help="GPUs of one point's job (default: 1 where GPUs are used, else 0); >1 runs train under torchrun")
    ap.add_argument("--gpus-for", action="append", default=[], metavar="SIZE=N",
                    help="GPUs of the points of one model size (e.g. l=4), overrides --gpus-per-point")
    ap.add_argument("--cpus-per-point", type=int, default=1, help="slurm: CPUs of one job")
    ap.add_argument("--mem-gb", type=int, default=None, help="slurm: memory of one job")
    ap.add_argument("--time-min", type=int, default=24 * 60, help="slurm: time limit of one job (requeued when hit)")
    ap.add_argument("--partition", default=None)
    ap.add_argument("--account", default=None)
    ap.add_argument("--qos", default=None)
    ap.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                    help="any other sbatch option (e.g. constraint=a100)")
    ap.add_argument("--max-requeue", type=int, default=3, help="slurm: requeues after hitting the time limit")
    ap.add_argument("--signal-delay-s", type=int, default=90, help="slurm: seconds before the limit a job checkpoints")
    ap.add_argument("--poll-s", type=float, default=1.0)
    ap.add_argument("--dry-run", action="store_true", help="print what would run and stop")
    return ap


def run(args) -> int:
    root = Path(args.root).resolve()
    pipe = launch_dvc.classify(root)
    if pipe.upstream_stale:
        print(f"upstream: dvc repro {' '.join(pipe.upstream_stale)}", file=sys.stderr)
        if args.dry_run:
            return 0
        launch_dvc.dvc(root, "repro", *pipe.upstream_stale)
        pipe = launch_dvc.classify(root)
    todo = [p for p in pipe.points.values() if p.stale]
    print(f"{len(todo)} of {len(pipe.points)} grid points to run"
          + (f": {', '.join(p.key for p in todo)}" if todo else ""), file=sys.stderr)
    if args.dry_run:
        for p in todo:
            print(f"  {p.key}: {' -> '.join(p.stale)}", file=sys.stderr)
        return 0

    sizes, per_size = _sizes(root), {k: int(v) for k, v in _pairs(args.gpus_for, "--gpus-for").items()}
    n_gpus = _n_gpus() if args.executor == "local" else 0
    default_gpus = args.gpus_per_point if args.gpus_per_point is not None else (1 if n_gpus else 0)
    gpus_of = {p.key: per_size.get(sizes.get(p.key, ""), default_gpus) for p in todo}

    work = root / ".dvc" / "tmp" / "launch"
    for sub in ("logs", "state", "specs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    if args.executor == "slurm":
        from benchmark.launching.slurm import SlurmRunner

        runners = {}  # one submitit executor per GPU count
        for g in sorted(set(gpus_of.values())):
            runners[g] = SlurmRunner(work / "submitit", slurm_params(args, g), args.max_requeue)
    else:
        pool = local_pool(args.jobs, n_gpus, len(os.sched_getaffinity(0)))
        runners = {None: pool}
        too_big = [k for k, g in gpus_of.items() if g > n_gpus > 0]
        if too_big:
            raise LaunchError(f"{too_big[0]}: needs {gpus_of[too_big[0]]} GPUs, {n_gpus} visible")
        print(f"local: {pool.slots} job(s) at once, " + (f"{n_gpus} GPU(s)" if n_gpus else
              f"{pool.threads} thread(s) each (train.threads, when set in params, wins)"), file=sys.stderr)

    _check_not_running(work, todo, args.executor)
    launch_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    table = Table([p.key for p in todo])
    pending = largest_first(root, todo)
    active: dict[str, tuple] = {}  # point -> (runner, stages, snapshot, JobSpec)
    prepared = launch_dvc.prepare_points(root, {p.key: p.stale for p in todo})
    try:
        while pending or active:
            ended = [(point, error) for runner in {id(r): r for r, *_ in active.values()}.values()
                     for point, error in runner.poll().items()]
            for p in list(pending):  # start before committing what ended: a free slot does not wait
                runner = runners[gpus_of[p.key] if args.executor == "slurm" else None]
                if not runner.can_start(gpus_of[p.key]):
                    continue
                pending.remove(p)
                steps, snapshot = prepared[p.key]
                log = work / "logs" / f"{p.key}.log"
                with open(log, "a") as f:
                    f.write(f"\n=== launch {launch_id}: {p.key}: {' -> '.join(p.stale)}\n")
                spec = JobSpec(p.key, launch_id, str(root), steps, str(log), str(work / "state" / f"{p.key}.json"),
                               gpus=gpus_of[p.key])
                runner.start(spec, work / "specs" / f"{p.key}.json")
                active[p.key] = (runner, p.stale, snapshot, spec)
                table.update(p.key, state="running", stage="submitted", started=time.time())
            for point, error in ended:
                _, stages, snapshot, spec = active.pop(point)
                _finish(root, table, point, stages, snapshot, spec, error)
            for point, (_, _, _, spec) in active.items():
                st = read_state(spec.state)
                if st.get("launch_id") == launch_id and st.get("stage"):
                    row = table.rows[point]
                    if row.stage == "submitted":
                        row.started = st.get("started", row.started)
                    row.stage = st["stage"]
                log = pipe.points[point].train_log
                tps = tokens_per_s(root / log) if log else None
                table.update(point, tokens_per_s=tps or table.rows[point].tokens_per_s)
            table.show()
            if pending or active:
                time.sleep(args.poll_s)
    except KeyboardInterrupt:
        for runner in runners.values():
            runner.stop()
        print("\ninterrupted: running jobs stopped; a relaunch resumes them from their checkpoints", file=sys.stderr)
        return 130
    print(table.summary(), file=sys.stderr)
    failed = [r.point for r in table.rows.values() if r.state == "failed"]
    if failed:
        print(f"error: {len(failed)} grid point(s) failed ({', '.join(failed)}); logs in {work / 'logs'}; "
              "collect/fit/report not run; fix and relaunch to run only these", file=sys.stderr)
        return 1
    left = [s for s in launch_dvc.stale_stages(root) if s not in pipe.downstream]
    if left:
        raise LaunchError(f"dvc.lock: {', '.join(left)} still not up to date after the launch")
    print("downstream: dvc repro", file=sys.stderr)
    launch_dvc.dvc(root, "repro")
    return 0


def _check_not_running(work: Path, todo: list, executor: str) -> None:
    """Refuse to start a point whose job from an earlier launch is still alive (two jobs would share its folder)."""
    import socket

    for p in todo:
        path = work / "state" / f"{p.key}.json"
        if executor == "slurm":
            from benchmark.launching.slurm import SlurmRunner

            job = SlurmRunner.still_active(path)
            if job:
                raise LaunchError(f"{p.key}: SLURM job {job} of an earlier launch is still queued or running "
                                  f"(wait for it or `scancel {job}`)")
            continue
        st = read_state(path)
        if st.get("status") == "running" and st.get("host") == socket.gethostname() and _still_alive(st.get("pid")):
            raise LaunchError(f"{p.key}: process {st['pid']} of an earlier launch still runs it "
                              f"(wait for it or `kill {st['pid']}`)")


def _still_alive(pid, grace_s: float = 5.0) -> bool:
    """Whether `pid` runs after up to `grace_s` seconds: a job killed a moment ago may still be exiting
    (flushing a checkpoint to a slow disk) before it is gone."""
    deadline = time.monotonic() + grace_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
    return False


def _finish(root: Path, table: Table, point: str, stages: list[str], snapshot: dict, spec: JobSpec,
            error: str | None) -> None:
    st = read_state(spec.state)
    fields = {"ended": time.time()}
    if st.get("launch_id") == spec.launch_id:
        fields["ended"] = st.get("ended") or fields["ended"]
        if st.get("error"):
            error = st["error"] if error is None or "exit code" in error else f"{error}; {st['error']}"
    if error is None:
        try:
            launch_dvc.commit_point(root, stages, snapshot)
        except LaunchError as e:
            error = str(e)
    if error is None:
        table.update(point, state="done", stage=stages[-1], **fields)
    else:
        table.update(point, state="failed", error=error, **fields)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (LaunchError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
