"""Token shards and the train stage's loader: the rows are the stream's examples, resume and ranks are exact,
workers change nothing, and the step (static padding, gradient accumulation, compile) keeps the loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.training import corpus as corpus_mod, loader, shards, trainer
from benchmark.config import params
from benchmark.training.data import IGNORE, example_ids, first_scored
from benchmark.tasks import example_id


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    import yaml

    from benchmark.stages.prepare import prepare
    from tests_paths import TINY

    p = params.parse(yaml.safe_load(TINY.read_text()))
    out = tmp_path_factory.mktemp("data")
    prepare(p, out)
    return p, corpus_mod.load(out)


def _planner(p, c, state=None, seq_len=None, loss_on="target", target_weight=None):
    names = c.task_names
    index = [shards.read(c.root / "shards" / n)[1] for n in names]
    w = {t.name: t.weight for t in p.data.tasks}
    return loader.Planner(index, [False] * len(names), names, [w[n] for n in names], p.data.seed, 0,
                          seq_len or p.model.seq_len, state, loss_on=loss_on, target_weight=target_weight)


def _rows(p, c, seq_len=None, loss_on="target", target_weight=None):
    v = c.vocab
    return loader.ShardRows(c.root / "shards", c.task_names, {"pad": v.pad, "bos": v.bos, "eos": v.eos, "sep": v.sep},
                            [v.tasks[n] for n in c.task_names], seq_len or p.model.seq_len, loss_on=loss_on,
                            target_weight=target_weight)


def _descs(p, c, batching, steps, state=None, capacity=None):
    it = loader.micro_batches(_planner(p, c, state), batching, 0, 1 << 62, capacity)
    return [next(it) for _ in range(steps * batching.micro_steps)]


def _tensors(item: dict) -> dict:
    return {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in item.items()}


@pytest.mark.parametrize("weights", [(1, 1, 1), (5, 3, 2), (0.9, 0.1)])
def test_every_stratum_of_the_mixture_holds_each_task_in_its_share(weights):
    """The task mix is stratified: each STRATUM consecutive examples hold task t floor or ceil of STRATUM x w_t
    times, in an order that differs between seeds, so the mix adds no seed noise to a run's task counts."""
    w = np.asarray(weights, float) / sum(weights)
    cum = np.cumsum(w)
    k = 3 * loader.MIX_BLOCK + 5 * loader.STRATUM  # crosses block boundaries
    orders = []
    for seed in range(4):
        tasks = loader.mixture(seed, cum, 0, k)
        strata = tasks.reshape(-1, loader.STRATUM)
        counts = np.stack([np.bincount(s, minlength=len(w)) for s in strata])
        assert (counts >= np.floor(loader.STRATUM * w) - 1e-9).all() and (counts <= np.ceil(loader.STRATUM * w) + 1e-9).all()
        assert np.array_equal(loader.mixture(seed, cum, 1000, 70_000), tasks[1000:70_000])  # a pure function of k
        orders.append(tasks[:loader.STRATUM])
    assert len({o.tobytes() for o in orders}) == len(orders)  # each seed orders a stratum its own way


def test_shards_hold_the_generated_stream_tokenized(prepared):
    p, c = prepared
    m = c.manifest["shards"]
    for task in p.data.tasks:
        tok, index = shards.read(c.root / "shards" / task.name)
        held = {example_id(e) for s in ("validation", "test") for e in c.split(task.name, s)}
        src = corpus_mod.generated_source(task.generator, p.data.seed, 0, held)
        for j in (0, 1, len(index) // 2, len(index) - 1):
            ex, (off, n_in, n_tgt) = src(j), index[j]
            enc = [e.ids for e in c.tokenizer.encode_batch([ex["input"], ex["target"]], add_special_tokens=False)]
            assert tok[off:off + n_in].tolist() == enc[0] and tok[off + n_in:off + n_in + n_tgt].tolist() == enc[1]
        assert m[task.name]["examples"] == len(index)
    # enough for a run of data.train_tokens: planning one never runs off a shard's end
    planner, tokens = _planner(p, c), 0
    while tokens < p.data.train_tokens:
        tokens += int(planner.next_row()[:, 4].sum())


def test_a_run_longer_than_the_shards_stops_with_one_line_naming_data_train_tokens(prepared):
    p, c = prepared
    planner = _planner(p, c)
    with pytest.raises(loader.ShardExhausted, match="data.train_tokens"):
        for _ in range(100_000):
            planner.next_row()


@pytest.mark.parametrize("loss_on", ["target", "text", "mixed"])  # mixed: the last task on its target, the others text
@pytest.mark.parametrize("seq_len", [None, 40])  # 40: long examples are cut as example_ids cuts them
def test_rows_are_the_planned_examples_as_example_ids_encodes_them(prepared, seq_len, loss_on):
    p, c = prepared
    T = seq_len or p.model.seq_len
    of = {n: loss_on if loss_on != "mixed" else ("target" if n == c.task_names[-1] else "text") for n in c.task_names}
    if loss_on == "mixed":
        loss_on = [of[n] for n in c.task_names]  # one per task, as the train stage gives them (corpus.loss_on_of)
    held = {n: {example_id(e) for s in ("validation", "test") for e in c.split(n, s)} for n in c.task_names}
    gens = {t.name: t.generator for t in p.data.tasks}
    planner = _planner(p, c, seq_len=T, loss_on=loss_on)
    it = loader.micro_batches(planner, loader.Batching(4, 4), 0, 1 << 62)
    for _ in range(3):
        desc = next(it)
        b = _rows(p, c, T, loss_on)[desc]
        labels = np.full((4, T), IGNORE, np.int64)
        for r, ex_rows in enumerate(desc["rows"]):
            ids, pos = [], []
            for task_no, j, *_ in ex_rows.tolist():
                name = c.task_names[task_no]
                ex = corpus_mod.generated_source(gens[name], p.data.seed, 0, held[name])(j)
                enc = [e.ids for e in c.tokenizer.encode_batch([ex["input"], ex["target"]], add_special_tokens=False)]
                e_ids, n_prompt = example_ids(c.vocab, name, enc[0], enc[1], T)
                first = first_scored(n_prompt, of[name])  # text: from the first input token
                assert first == (2 if of[name] == "text" else n_prompt)
                labels[r, len(ids) + first:len(ids) + len(e_ids)] = e_ids[first:]
                pos += list(range(len(e_ids)))
                ids += e_ids
            n = len(ids)
            assert b["input_ids"][r].tolist() == ids + [c.vocab.pad] * (T - n)
            assert b["position_ids"][r].tolist() == pos + list(range(T - n))
        idx, out, tgt = trainer.host_positions(torch.from_numpy(labels), torch.from_numpy(b["position_ids"]))
        assert b["idx"].tolist() == idx.tolist() and b["out"].tolist() == out.tolist() and b["tgt"].tolist() == tgt.tolist()
        assert desc["n_real"] == int((b["input_ids"] != c.vocab.pad).sum()) and desc["n_targets"] == len(tgt)


@pytest.mark.parametrize("loss_on", ["target", "text"])
def test_a_target_weight_counts_each_answer_token_that_many_times(prepared, loss_on):
    """data.tasks.<task>.target_weight w: the loss entries are the unweighted ones, then each answer token (the
    target but its </s>) of that task w - 1 times more, in blocks after them; the planner counts them all (the
    compiled path's capacity) and normalizes by the unweighted count; the inputs are unchanged."""
    from collections import Counter

    p, c = prepared
    T, names = p.model.seq_len, c.task_names
    weights = [3 if i == 1 else 1 for i in range(len(names))]  # the second task's answers count three times
    held = {n: {example_id(e) for s in ("validation", "test") for e in c.split(n, s)} for n in names}
    gens = {t.name: t.generator for t in p.data.tasks}
    plain_it = loader.micro_batches(_planner(p, c, seq_len=T, loss_on=loss_on), loader.Batching(4, 4), 0, 1 << 62)
    planner = _planner(p, c, seq_len=T, loss_on=loss_on, target_weight=weights)
    it = loader.micro_batches(planner, loader.Batching(4, 4), 0, 1 << 62)
    for _ in range(3):
        desc, plain_desc = next(it), next(plain_it)
        b, plain = _rows(p, c, T, loss_on, weights)[desc], _rows(p, c, T, loss_on)[plain_desc]
        assert desc["n_targets"] == plain_desc["n_targets"] == len(plain["tgt"])  # the loss is normalized as before
        for key in ("input_ids", "position_ids", "idx"):
            assert np.array_equal(b[key], plain[key])
        n = len(plain["out"])
        assert b["out"][:n].tolist() == plain["out"].tolist() and b["tgt"][:n].tolist() == plain["tgt"].tolist()
        answers = Counter()  # (flat position that predicts, token) of each answer token of the weighted task
        for r, ex_rows in enumerate(desc["rows"]):
            start = 0
            for task_no, j, *_ in ex_rows.tolist():
                name = names[task_no]
                ex = corpus_mod.generated_source(gens[name], p.data.seed, 0, held[name])(j)
                enc = [e.ids for e in c.tokenizer.encode_batch([ex["input"], ex["target"]], add_special_tokens=False)]
                e_ids, n_prompt = example_ids(c.vocab, name, enc[0], enc[1], T)
                if weights[task_no] > 1:
                    for q in range(n_prompt, len(e_ids) - 1):  # not </s>
                        answers[(r * T + start + q - 1, e_ids[q])] += weights[task_no] - 1
                start += len(e_ids)
        assert answers  # the rows hold answers of the weighted task
        extra = Counter(zip(b["idx"][b["out"][n:]].tolist(), b["tgt"][n:].tolist()))
        assert extra == answers
        assert sum(planner.loss_entries(r) for r in desc["rows"]) == len(b["out"])


def test_resume_from_a_state_plans_the_same_rows(prepared):
    p, c = prepared
    b = loader.Batching(4, 2)
    first = _descs(p, c, b, 10)
    state = first[9]["state"]  # after 5 steps (2 micro-batches each)
    again = _descs(p, c, b, 5, state=state)
    for x, y in zip(first[10:], again):
        assert all((u == v).all() for u, v in zip(x["rows"], y["rows"])) and x["state"] == y["state"]
    assert state["index"] > 0


def test_each_rank_builds_its_own_rows_of_the_same_global_batch(prepared):
    p, c = prepared
    one = _descs(p, c, loader.Batching(4, 4), 4)
    ranks = [_descs(p, c, loader.Batching(4, 2, rank=r, world=2), 4) for r in (0, 1)]
    for s, whole in enumerate(one):
        for r in (0, 1):
            mine = ranks[r][s]
            assert all((u == v).all() for u, v in zip(mine["rows"], whole["rows"][r::2]))
            assert (mine["n_real"], mine["n_targets"]) == (whole["n_real"], whole["n_targets"])


def test_workers_do_not_change_the_batches(prepared):
    p, c = prepared
    got = []
    for workers in (0, 2):
        descs = loader.micro_batches(_planner(p, c), loader.Batching(4, 2), 0, 6000)
        got.append(list(loader.loader(_rows(p, c), descs, workers=workers, pin_memory=False)))
    assert len(got[0]) == len(got[1]) > 4
    for a, b in zip(*got):
        assert all(torch.equal(a[k], b[k]) for k in ("input_ids", "position_ids", "idx", "out", "tgt"))
        assert a["state"] == b["state"] and a["last"] == b["last"]


def _net(c, p, seed=0, dtype=torch.float64):
    from transformers import LlamaForCausalLM

    from benchmark.training import model as model_mod

    torch.manual_seed(seed)
    cfg = model_mod.llama_config(d_model=32, n_layers=2, n_heads=2, vocab_size=c.tokenizer.get_vocab_size(),
                                 seq_len=p.model.seq_len)
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg).to(dtype)


class _Capture:
    """An optimizer that only records the gradients accumulate_step hands it."""

    def __init__(self, net):
        self.net, self.param_groups, self.grads = net, [{}], None

    def step(self):
        self.grads = {k: v.grad.clone() for k, v in self.net.named_parameters()}

    def zero_grad(self, set_to_none=True):
        self.net.zero_grad(set_to_none=set_to_none)


def _step_grads(p, c, micros, n_targets):
    net = _net(c, p)
    opt = _Capture(net)
    total, _ = trainer.accumulate_step(trainer.TargetLoss(net), opt, micros, n_targets=n_targets, lr=0.0,
                                       grad_clip=0.0, device="cpu")
    return float(total) / n_targets, opt.grads


def _assert_same(a, b, rtol):
    (la, ga), (lb, gb) = a, b
    assert abs(la - lb) <= rtol * abs(la)
    assert ga.keys() == gb.keys() and all(torch.allclose(ga[k], gb[k], rtol=rtol, atol=1e-12) for k in ga)


@pytest.mark.parametrize("target_weight", [None, (1, 40, 1)])  # 40: more loss entries than kept positions
def test_static_padding_gives_the_same_loss_and_gradients(prepared, target_weight):
    p, c = prepared
    b = loader.Batching(4, 4)
    planner = lambda: _planner(p, c, target_weight=target_weight)  # noqa: E731
    cap = loader.capacity(planner, b)
    desc = {k: next(loader.micro_batches(planner(), b, 0, 1 << 62, k)) for k in (None, cap)}
    exact, padded = (_tensors(_rows(p, c, target_weight=target_weight)[desc[k]]) for k in (None, cap))
    assert padded["static"] and len(padded["idx"]) == cap[0] > len(exact["idx"]) and len(padded["out"]) == cap[1]
    assert target_weight is None or cap[1] > cap[0]
    n_t = exact["n_targets"]
    _assert_same(_step_grads(p, c, [exact], n_t), _step_grads(p, c, [{**padded, "static": False}], n_t), 1e-9)


def test_k_micro_batches_give_the_loss_and_gradients_of_one_batch(prepared):
    """Acceptance: float64, relative 1e-7, through trainer.accumulate_step."""
    p, c = prepared
    one = [_tensors(_rows(p, c)[d]) for d in _descs(p, c, loader.Batching(4, 4), 1)]
    four = [_tensors(_rows(p, c)[d]) for d in _descs(p, c, loader.Batching(4, 1), 1)]
    assert len(one) == 1 and len(four) == 4 and one[0]["n_targets"] == four[0]["n_targets"]
    _assert_same(_step_grads(p, c, one, one[0]["n_targets"]), _step_grads(p, c, four, four[0]["n_targets"]), 1e-7)


def test_k_micro_batches_give_the_weights_of_one_batch_after_20_steps(prepared):
    """Acceptance: fp32, AdamW, 20 steps, same weights within fp32 tolerance."""
    p, c = prepared
    weights = []
    for micro in (4, 2, 1):
        net = _net(c, p, dtype=torch.float32)
        opt = trainer.build_optimizer(net, lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
        model = trainer.TargetLoss(net)
        descs = _descs(p, c, loader.Batching(4, micro), 20)
        for s in range(20):
            micros = [_tensors(_rows(p, c)[d]) for d in descs[s * (4 // micro):(s + 1) * (4 // micro)]]
            trainer.accumulate_step(model, opt, micros, n_targets=micros[0]["n_targets"], lr=3e-3, grad_clip=1.0,
                                    device="cpu")
        weights.append({k: v.detach().clone() for k, v in net.named_parameters()})
    moved = max(float((weights[0][k] - _net(c, p, dtype=torch.float32).state_dict()[k]).abs().max()) for k in weights[0])
    assert moved > 1e-2  # the steps did change the weights
    for other in weights[1:]:
        assert all(torch.allclose(weights[0][k], other[k], rtol=1e-4, atol=1e-5) for k in other)


def test_compiled_path_compiles_once_and_never_recompiles_after_warm_up(prepared):
    """Acceptance: static shapes from the loader; torch._dynamo's counters do not move over 30 steps after
    warm-up (CPU)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    p, c = prepared
    b = loader.Batching(4, 2)
    cap = loader.capacity(lambda: _planner(p, c), b)
    net = _net(c, p, dtype=torch.float32)
    opt = trainer.build_optimizer(net, lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
    model = trainer.TargetLoss(net, compile=True)
    descs = _descs(p, c, b, 33, capacity=cap)
    static, losses, before = 0, [], None
    for s in range(33):
        if s == 3:
            before = (counters["stats"]["unique_graphs"], counters["frames"]["ok"], counters["frames"]["total"])
        micros = [_tensors(_rows(p, c)[d]) for d in descs[2 * s:2 * s + 2]]
        static += sum(bool(m["static"]) for m in micros)
        total, _ = trainer.accumulate_step(model, opt, micros, n_targets=micros[0]["n_targets"], lr=3e-3,
                                           grad_clip=1.0, device="cpu")
        losses.append(float(total) / micros[0]["n_targets"])
    after = (counters["stats"]["unique_graphs"], counters["frames"]["ok"], counters["frames"]["total"])
    assert before[0] >= 1  # it did compile, during warm-up
    assert after == before, (before, after)
    assert static >= 60  # nearly every micro-batch took the compiled path
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
