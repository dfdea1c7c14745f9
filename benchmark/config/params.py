"""params.yaml -> frozen, checked dataclasses. Any bad value stops with one line naming its key."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from benchmark.tasks import GENERATORS, KINDS
from benchmark.training.data import LOSS_ON


class ParamsError(ValueError):
    """A params.yaml value is missing or invalid; the message starts with the dotted key."""


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _get(d: dict, key: str, path: str, types: type | tuple, default: Any = ..., check=None, why: str = ""):
    full = f"{path}.{key}" if path else key
    if not isinstance(d, dict):
        raise ParamsError(f"{path}: expected a mapping, got {type(d).__name__}")
    if key not in d:
        if default is ...:
            raise ParamsError(f"{full}: missing key")
        return default
    v = d[key]
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ParamsError(f"{full}: expected {_tname(types)}, got {v!r}")
    tt = types if isinstance(types, tuple) else (types,)
    if float in tt and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    elif int in tt and float not in tt and isinstance(v, float) and v.is_integer():
        v = int(v)  # `tokens: 1e6` reads as the float 1000000.0 (YAML 1.2, as DVC reads it)
    if not isinstance(v, types):
        raise ParamsError(f"{full}: expected {_tname(types)}, got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise ParamsError(f"{full}: expected a finite number, got {v!r}")
    if check is not None and not check(v):
        raise ParamsError(f"{full}: invalid value {v!r}{' (' + why + ')' if why else ''}")
    return v


def _tname(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true/false",
                        dict: "a mapping", list: "a list"}.get(t, t.__name__) for t in types)


def _no_unknown(d: dict, allowed: set[str], path: str) -> None:
    if not isinstance(d, dict):
        raise ParamsError(f"{path}: expected a mapping, got {type(d).__name__} {d!r:.40}")
    extra = sorted((k for k in d if k not in allowed), key=str)
    if extra:
        raise ParamsError(f"{path}.{extra[0]}: unknown key (known: {', '.join(sorted(allowed))})")


_pos = lambda v: v > 0  # noqa: E731
_nonneg = lambda v: v >= 0  # noqa: E731


@dataclass(frozen=True, kw_only=True)
class HubSource:
    """A Hugging Face dataset standing in for a generated task (loaded with datasets.load_dataset)."""

    path: str  # dataset id on the Hub, or a local folder in Hub layout
    name: str | None  # config name
    revision: str | None  # commit sha or tag; pin it for reproducibility
    splits: dict  # {"train": ..., "validation": ..., "test": ...} -> split names in the dataset
    columns: dict  # {"input": ..., "target": ...} -> column names; dots reach into nested fields


@dataclass(frozen=True, kw_only=True)
class Task:
    name: str
    kind: str  # translation | summarization | classification: decides the metric
    weight: float  # share of training examples
    generator: str | None = None  # a generated task ...
    hub: HubSource | None = None  # ... or a Hub dataset
    test_examples: int | None = None  # this task's test split, when it needs another size than data.test_examples
    loss_on: str | None = None  # which tokens of this task's examples carry the loss; None: data.loss_on
    target_weight: int = 1  # times each answer token (not its </s>) counts in the training loss; validation: once


@dataclass(frozen=True, kw_only=True)
class Data:
    seed: int
    validation_examples: int  # per task
    test_examples: int  # per task
    tasks: tuple[Task, ...]
    train_tokens: int = 3_000_000  # real tokens of generated training text prepare shards (all tasks)
    loss_on: str = "text"  # which tokens carry the loss in training and validation (benchmark.training.data.LOSS_ON)

    def loss_on_of(self, task: str) -> str:
        """Which tokens of `task`'s examples carry the loss: the task's own `loss_on`, else data.loss_on."""
        own = next(t.loss_on for t in self.tasks if t.name == task)
        return own or self.loss_on


@dataclass(frozen=True, kw_only=True)
class Tokenizer:
    vocab_size: int
    train_examples: int  # per task, taken from the training stream


@dataclass(frozen=True, kw_only=True)
class Size:
    name: str
    d_model: int
    n_layers: int
    n_heads: int
    lr: float  # peak learning rate for this size
    batch_size: int  # sequences per optimizer step (global)
    micro_batch_size: int | None = None  # sequences per forward/backward pass and process (None = batch / processes)


@dataclass(frozen=True, kw_only=True)
class ModelParams:
    seq_len: int
    sizes: dict[str, Size]


@dataclass(frozen=True, kw_only=True)
class Train:
    warmup_fraction: float  # of the run's own token budget
    min_lr_ratio: float  # cosine decays to lr * min_lr_ratio at the end of the budget
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    checkpoint_every: int  # steps between resumable checkpoints (0 = never)
    divergence_factor: float  # stop if the smoothed loss exceeds this many times its minimum
    device: str  # auto | cpu | cuda
    compile: bool  # torch.compile the model
    threads: int  # CPU threads (0 = torch default)
    log_every: int = 1  # steps between reads of the loss from the device (one host sync per read)
    loader_workers: int = 1  # DataLoader worker processes reading the token shards (0 = in the training process)
    eval_every: int = 0  # tokens between learning-curve points (validation loss on a fixed subset; 0 = off)
    curve_examples: int = 64  # validation examples per task in the learning curve's fixed subset (at most the split)


@dataclass(frozen=True, kw_only=True)
class Evaluate:
    batch_size: int
    max_new_tokens: int
    bootstrap: int  # resamples for BLEU/ROUGE standard errors
    seed: int


@dataclass(frozen=True, kw_only=True)
class Fit:
    """The `fit:` section: how the fit stage fits the laws (benchmark/stages/fit.py)."""

    bootstrap: int = 4000  # resamples over runs for the loss laws (Besiroglu et al. 2024 use 4000)
    downstream_bootstrap: int = 1000  # ... for the downstream laws
    seed: int = 0
    huber_delta: float = 1e-3  # Hoffmann et al. 2022, Sec. 3.3
    holdout: float = 0.2  # fraction of the largest-compute runs held out to measure extrapolation
    budget_tolerance: float = 0.15  # relative FLOPs tolerance of an IsoFLOP budget (Approach 2)
    bootstrap_starts: int = 2
    allocation_flops: float | None = None  # C at which N_opt, D_opt are reported; None = the largest C
    downstream_metrics: tuple[str, ...] = ("bleu", "rougeL", "accuracy")

    def as_dict(self) -> dict:
        from dataclasses import asdict

        out = asdict(self)
        out["downstream_metrics"] = list(self.downstream_metrics)
        return out


@dataclass(frozen=True, kw_only=True)
class Run:
    run_id: str
    size: str
    tokens: int
    seed: int


@dataclass(frozen=True, kw_only=True)
class Params:
    data: Data
    tokenizer: Tokenizer
    model: ModelParams
    train: Train
    evaluate: Evaluate
    runs: dict[str, Run] = field(default_factory=dict)
    fit: Fit = field(default_factory=Fit)
    raw: dict = field(default_factory=dict, compare=False, repr=False)


def _parse_hub(d: Any, path: str) -> HubSource:
    _no_unknown(d, {"path", "name", "revision", "splits", "columns"}, path)
    splits = _get(d, "splits", path, dict)
    for s in ("train", "validation", "test"):
        _get(splits, s, f"{path}.splits", str)
    _no_unknown(splits, {"train", "validation", "test"}, f"{path}.splits")
    columns = _get(d, "columns", path, dict)
    for c in ("input", "target"):
        _get(columns, c, f"{path}.columns", str)
    _no_unknown(columns, {"input", "target"}, f"{path}.columns")
    return HubSource(path=_get(d, "path", path, str), name=_get(d, "name", path, (str, type(None)), None),
                     revision=_get(d, "revision", path, (str, type(None)), None),
                     splits=dict(splits), columns=dict(columns))


def _parse_task(name: str, d: Any, path: str) -> Task:
    _no_unknown(d, {"kind", "weight", "generator", "hub", "test_examples", "loss_on", "target_weight"}, path)
    kind = _get(d, "kind", path, str, check=lambda v: v in KINDS, why=f"one of {', '.join(KINDS)}")
    weight = _get(d, "weight", path, float, 1.0, _pos, "must be > 0")
    gen = _get(d, "generator", path, (str, type(None)), None,
               lambda v: v is None or v in GENERATORS, f"unknown task generator; known: {', '.join(GENERATORS)}")
    hub = d.get("hub")
    if (gen is None) == (hub is None):
        raise ParamsError(f"{path}: give exactly one of 'generator' or 'hub'")
    n_test = _get(d, "test_examples", path, (int, type(None)), None, lambda v: v is None or v > 0, "must be > 0")
    loss_on = _get(d, "loss_on", path, (str, type(None)), None, lambda v: v is None or v in LOSS_ON,
                   f"one of {', '.join(LOSS_ON)} (or absent: data.loss_on)")
    target_weight = _get(d, "target_weight", path, int, 1, _pos, "a whole number >= 1")
    return Task(name=name, kind=kind, weight=weight, generator=gen, test_examples=n_test, loss_on=loss_on,
                target_weight=target_weight,
                hub=_parse_hub(hub, f"{path}.hub") if hub is not None else None)


def _parse_size(name: str, d: Any, path: str) -> Size:
    _no_unknown(d, {"d_model", "n_layers", "n_heads", "lr", "batch_size", "micro_batch_size"}, path)
    d_model = _get(d, "d_model", path, int, check=_pos, why="must be > 0")
    n_heads = _get(d, "n_heads", path, int, check=lambda v: v > 0 and d_model % v == 0,
                   why=f"must be > 0 and divide d_model={d_model}")
    return Size(name=name, d_model=d_model, n_layers=_get(d, "n_layers", path, int, check=_pos, why="must be > 0"),
                n_heads=n_heads, lr=_get(d, "lr", path, float, check=_pos, why="must be > 0"),
                batch_size=_get(d, "batch_size", path, int, check=_pos, why="must be > 0"),
                micro_batch_size=_get(d, "micro_batch_size", path, int, None, lambda v: v is None or v > 0, "must be > 0"))


def parse_fit(f: Any, path: str = "fit") -> Fit:
    """Check the `fit:` section (absent or null: the defaults)."""
    if f is None:
        return Fit()
    keys = set(Fit.__dataclass_fields__)
    _no_unknown(f, keys, path)
    dflt = Fit()
    frac_open = lambda v: 0 < v < 1  # noqa: E731
    metrics = _get(f, "downstream_metrics", path, list, list(dflt.downstream_metrics),
                   lambda v: all(isinstance(x, str) and x for x in v) and len(set(v)) == len(v),
                   "a list of distinct metric names")
    return Fit(
        bootstrap=_get(f, "bootstrap", path, int, dflt.bootstrap, _nonneg, "must be >= 0"),
        downstream_bootstrap=_get(f, "downstream_bootstrap", path, int, dflt.downstream_bootstrap, _nonneg, "must be >= 0"),
        seed=_get(f, "seed", path, int, dflt.seed),
        huber_delta=_get(f, "huber_delta", path, float, dflt.huber_delta, _pos, "must be > 0"),
        holdout=_get(f, "holdout", path, float, dflt.holdout, frac_open,
                     "a fraction in (0, 1) of the largest-compute runs"),
        budget_tolerance=_get(f, "budget_tolerance", path, float, dflt.budget_tolerance, lambda v: 0 <= v < 1,
                              "a relative tolerance in [0, 1)"),
        bootstrap_starts=_get(f, "bootstrap_starts", path, int, dflt.bootstrap_starts, _pos, "must be >= 1"),
        allocation_flops=_get(f, "allocation_flops", path, (float, type(None)), None, lambda v: v is None or v > 0,
                              "a positive number of FLOPs or null"),
        downstream_metrics=tuple(metrics),
    )


def parse(raw: dict) -> Params:
    """Check and convert the whole params mapping; raises ParamsError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ParamsError("params: expected a mapping at the top level")
    _no_unknown(raw, {"data", "tokenizer", "model", "train", "evaluate", "runs", "fit"}, "params")
    d = _get(raw, "data", "", dict)
    _no_unknown(d, {"seed", "validation_examples", "test_examples", "tasks", "train_tokens", "loss_on"}, "data")
    tasks_raw = _get(d, "tasks", "data", dict, check=lambda v: len(v) > 0, why="at least one task")
    data = Data(seed=_get(d, "seed", "data", int), tasks=tuple(_parse_task(k, v, f"data.tasks.{k}") for k, v in tasks_raw.items()),
                validation_examples=_get(d, "validation_examples", "data", int, check=_pos, why="must be > 0"),
                test_examples=_get(d, "test_examples", "data", int, check=_pos, why="must be > 0"),
                train_tokens=_get(d, "train_tokens", "data", int, 3_000_000, _pos, "must be > 0"),
                loss_on=_get(d, "loss_on", "data", str, "text", lambda v: v in LOSS_ON, f"one of {', '.join(LOSS_ON)}"))
    t = _get(raw, "tokenizer", "", dict)
    _no_unknown(t, {"vocab_size", "train_examples"}, "tokenizer")
    tok = Tokenizer(vocab_size=_get(t, "vocab_size", "tokenizer", int, check=lambda v: v >= 64, why="must be >= 64"),
                    train_examples=_get(t, "train_examples", "tokenizer", int, check=_pos, why="must be > 0"))
    m = _get(raw, "model", "", dict)
    _no_unknown(m, {"seq_len", "sizes"}, "model")
    sizes_raw = _get(m, "sizes", "model", dict, check=lambda v: len(v) > 0, why="at least one size")
    model = ModelParams(seq_len=_get(m, "seq_len", "model", int, check=lambda v: v >= 16, why="must be >= 16"),
                  sizes={k: _parse_size(k, v, f"model.sizes.{k}") for k, v in sizes_raw.items()})
    tr = _get(raw, "train", "", dict)
    keys = {"warmup_fraction", "min_lr_ratio", "weight_decay", "beta1", "beta2", "grad_clip", "checkpoint_every", "divergence_factor", "device", "compile", "threads", "log_every", "loader_workers",
            "eval_every", "curve_examples"}
    _no_unknown(tr, keys, "train")
    frac = lambda v: 0 <= v < 1  # noqa: E731
    train = Train(
        warmup_fraction=_get(tr, "warmup_fraction", "train", float, check=frac, why="in [0, 1)"),
        min_lr_ratio=_get(tr, "min_lr_ratio", "train", float, check=lambda v: 0 <= v <= 1, why="in [0, 1]"),
        weight_decay=_get(tr, "weight_decay", "train", float, check=_nonneg, why="must be >= 0"),
        beta1=_get(tr, "beta1", "train", float, check=frac, why="in [0, 1)"),
        beta2=_get(tr, "beta2", "train", float, check=frac, why="in [0, 1)"),
        grad_clip=_get(tr, "grad_clip", "train", float, check=_nonneg, why="must be >= 0 (0 = off)"),
        checkpoint_every=_get(tr, "checkpoint_every", "train", int, check=_nonneg, why="must be >= 0"),
        divergence_factor=_get(tr, "divergence_factor", "train", float, check=lambda v: v > 1, why="must be > 1"),
        device=_get(tr, "device", "train", str, check=lambda v: v in ("auto", "cpu", "cuda"), why="auto, cpu or cuda"),
        compile=_get(tr, "compile", "train", bool),
        threads=_get(tr, "threads", "train", int, check=_nonneg, why="must be >= 0"),
        log_every=_get(tr, "log_every", "train", int, 1, _pos, "must be > 0"),
        loader_workers=_get(tr, "loader_workers", "train", int, 1, _nonneg, "must be >= 0"),
        eval_every=_get(tr, "eval_every", "train", int, 0, _nonneg, "tokens, >= 0 (0 = no learning curve)"),
        curve_examples=_get(tr, "curve_examples", "train", int, 64, _pos, "must be > 0"),
    )
    e = _get(raw, "evaluate", "", dict)
    _no_unknown(e, {"batch_size", "max_new_tokens", "bootstrap", "seed"}, "evaluate")
    ev = Evaluate(batch_size=_get(e, "batch_size", "evaluate", int, check=_pos, why="must be > 0"),
                  max_new_tokens=_get(e, "max_new_tokens", "evaluate", int, check=_pos, why="must be > 0"),
                  bootstrap=_get(e, "bootstrap", "evaluate", int, check=_nonneg, why="must be >= 0"),
                  seed=_get(e, "seed", "evaluate", int))
    runs = {}
    for rid, r in _get(raw, "runs", "", dict, check=lambda v: len(v) > 0, why="at least one run").items():
        path = f"runs.{rid}"
        if not isinstance(rid, str) or not _RUN_ID.match(rid):
            raise ParamsError(f"{path}: run id must match {_RUN_ID.pattern} (it names a folder)")
        _no_unknown(r if isinstance(r, dict) else {}, {"size", "tokens", "seed"}, path)
        runs[rid] = Run(
            run_id=rid,
            size=_get(r, "size", path, str, check=lambda v: v in model.sizes,
                      why=f"unknown size; known: {', '.join(model.sizes)}"),
            tokens=_get(r, "tokens", path, int, check=_pos, why="must be > 0"),
            seed=_get(r, "seed", path, int, 0, _nonneg, "must be >= 0"),
        )
        if runs[rid].tokens > data.train_tokens and any(t.generator is not None for t in data.tasks):
            # prepare shards data.train_tokens of generated text; a longer run would stop mid-way in train
            raise ParamsError(f"{path}.tokens: invalid value {runs[rid].tokens} (exceeds data.train_tokens="
                              f"{data.train_tokens}, the generated training text prepare shards)")
    fit = parse_fit(raw.get("fit"))
    return Params(data=data, tokenizer=tok, model=model, train=train, evaluate=ev, runs=runs, fit=fit, raw=raw)


def read_yaml(path: str) -> Any:
    """A YAML file as DVC reads params.yaml (ruamel.yaml, YAML 1.2: `1e-2` is a number, duplicate keys are an
    error); a syntax error becomes one line `path:line:column: problem`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ParamsError(f"{path}:{line}: not UTF-8 (byte {data[e.start]:#04x})") from None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        what = " ".join(str(e.problem or e.context or "invalid YAML").split())
        raise ParamsError(f"{where}: not valid YAML ({what})") from None
    except (YAMLError, ValueError, RecursionError) as e:  # e.g. a bad timestamp or number literal
        msg = " ".join(str(e).split())[:200] or type(e).__name__
        raise ParamsError(f"{path}: not valid YAML ({msg})") from None


def load(path: str = "params.yaml") -> Params:
    """Read and check a params file."""
    return parse(read_yaml(str(path)))
