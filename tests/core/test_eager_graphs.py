"""CUDA-graph replay of repeated eager evaluations (`ember.core._backend.eager_graphs`).

The keying, the liveness of intermediates and the hand-over to the graph runner are
tested on the CPU with the fake graph of `test_compile_cudagraph` (its replay runs the
kernels again into the captured output buffers, so a result handed out without a copy
would be overwritten, as on CUDA). The `gpu` tests compare real replays with plain
evaluation."""

import numpy as np
import pytest
import torch

import ember.core as mx
from ember.core._backend import cudagraph as CG
from ember.core._backend import eager_graphs as EG
from tests.core.test_compile_cudagraph import Fake, host_read

HAS_CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")


@pytest.fixture
def fake(monkeypatch):
    f = Fake()
    monkeypatch.setattr(EG, "_BACKEND", [f])
    monkeypatch.setattr(EG, "_stream_fits", lambda s: not s.is_gpu)
    monkeypatch.setattr(EG, "_tensor_fits", lambda t: not t.is_cuda)
    monkeypatch.setattr(EG, "_current", lambda s: None)
    monkeypatch.setattr(EG, "ENABLED", [True])
    monkeypatch.setattr(EG, "MIN_COST", 0.0)
    monkeypatch.setattr(EG, "SEEN", 3)  # (the fewest that time a plain evaluation after the first)
    monkeypatch.setattr(EG, "ROUNDS", 0)  # (kept untimed)
    monkeypatch.setattr(EG, "MIN_STEPS", 1)
    monkeypatch.setattr(CG, "GRAPHS", [True])
    EG.clear()
    dev = mx.default_device()
    mx.set_default_device(mx.cpu)  # (the fake stands in on the CPU's stream)
    yield f
    mx.set_default_device(dev)
    EG.clear()


def _x(i, shape=(3, 4)):
    return mx.array(np.arange(np.prod(shape), dtype=np.float32).reshape(shape) * (i + 1))


def _entries():
    return list(EG._CACHE.values())


def test_repeated_graph_is_captured_once_and_replayed(fake):
    w = _x(0, (4, 2))
    for i in range(6):
        x = _x(i)
        y = mx.maximum(x @ w + 1.0, 0.0).sum(axis=1)
        mx.eval(y)
        ref = np.maximum(np.array(x) @ np.array(w) + 1.0, 0.0).sum(axis=1)
        np.testing.assert_array_equal(np.array(y), ref)
    (e,) = _entries()
    assert fake.captures == 1
    assert e.runner.status is CG.CAPTURED and e.runner.replays == 6 - EG.SEEN - 1


def _trial(fake, n, replayed_ms):
    """`n` evaluations of one graph, the fake device's clock advancing `replayed_ms` a
    replayed step and 2 ms a plain one: (its entry, runner, plain steps in its trial)."""
    w = _x(0, (4, 2))
    replays = plain_trial = 0
    for i in range(n):
        x = _x(i)
        y = mx.maximum(x @ w + 1.0, 0.0).sum(axis=1)
        mx.eval(y)
        (e,) = _entries()
        r = e.runner
        replayed = r is not None and r.replays > replays
        replays = r.replays if r is not None else 0
        plain_trial += (r is not None and r.replays >= EG.WARM and not replayed
                        and e.marks is not None)
        fake.now += replayed_ms if replayed else 2.0
        np.testing.assert_array_equal(
            np.array(y), np.maximum(np.array(x) @ np.array(w) + 1.0, 0.0).sum(axis=1))
    return e, r, plain_trial


@pytest.mark.parametrize("replayed_ms", [1.0, 1.8, 2.0])
def test_graphs_are_kept_where_replays_shorten_the_steps(replayed_ms, fake, monkeypatch):
    """Blocks of replayed and plain steps take turns in a timed trial; the graph is kept
    where replayed steps take at most KEEP of the plain period, and is released
    otherwise, the later steps plain."""
    monkeypatch.setattr(EG, "ROUNDS", 2)
    trial = 2 * EG.BLOCK * EG.ROUNDS
    n = EG.SEEN + EG.WARM + trial + 6
    e, r, plain_trial = _trial(fake, n, replayed_ms)
    assert fake.captures == 1 and plain_trial == trial // 2
    if replayed_ms / 2.0 <= EG.KEEP:  # (every step after the capture but the trial's plain)
        assert r.status is CG.CAPTURED and r.replays == n - EG.SEEN - 1 - trial // 2
    else:  # (the warm replays and the trial's)
        assert r.status is CG.RELEASED and r.replays == EG.WARM + trial // 2


@pytest.mark.parametrize("cost_ms, early", [(3.0, True), (1.5, False)])
def test_a_first_replayed_block_far_quicker_than_plain_keeps_the_graph(cost_ms, early, fake,
                                                                      monkeypatch):
    """Replayed steps of 1 ms against plain evaluations of at least 3 ms on the host keep
    the graph after the first replayed block, with no plain step in the trial; against
    1.5 ms the whole trial runs."""
    monkeypatch.setattr(EG, "ROUNDS", 2)
    monkeypatch.setattr(EG, "EARLY", 0.5)
    monkeypatch.setattr(EG._Entry, "timed", lambda e, cost: setattr(e, "cost", cost_ms / 1e3))
    e, r, plain_trial = _trial(fake, EG.SEEN + EG.WARM + 2 * EG.BLOCK * EG.ROUNDS + 4, 1.0)
    assert r.status is CG.CAPTURED and e.marks is None
    assert plain_trial == (0 if early else EG.BLOCK * EG.ROUNDS)


def test_graphs_of_one_primitive_stay_plain_unless_no_result_is_copied(fake, monkeypatch):
    monkeypatch.setattr(EG, "MIN_STEPS", 2)
    w = _x(0, (4, 2))
    for i in range(EG.SEEN + 3):
        x = _x(i)
        y = x @ w
        mx.eval(y)
        np.testing.assert_array_equal(np.array(y), np.array(x) @ np.array(w))
    assert fake.captures == 0 and not _entries()
    monkeypatch.setattr(CG, "DIRECT_BYTES", 24)  # (a result that goes out uncopied)
    for i in range(EG.SEEN + 3):
        x = _x(i)
        y = x @ w
        mx.eval(y)
        np.testing.assert_array_equal(np.array(y), np.array(x) @ np.array(w))
    (e,) = _entries()
    assert fake.captures == 2 and e.runner.replays == 2


def test_held_intermediates_get_their_values(fake):
    results = []
    for i in range(5):
        x = _x(i)
        h = x * 2.0     # held by this frame: it must get data
        y = (h + 1.0) * (x - 3.0)
        mx.eval(y)
        results.append((x, h, y))
    assert fake.captures == 1
    for x, h, y in results:  # (later replays must not overwrite earlier results)
        xn = np.array(x)
        np.testing.assert_array_equal(np.array(h), xn * 2.0)
        np.testing.assert_array_equal(np.array(y), (xn * 2.0 + 1.0) * (xn - 3.0))


def test_unheld_intermediates_get_no_data(fake):
    for i in range(4):
        x = _x(i)
        y = (x * 2.0 + 1.0).sum()
        mx.eval(y)
        assert float(y) == float((np.array(x) * 2.0 + 1.0).sum())
    (e,) = _entries()
    assert e.runner is not None and len(e.runner.static_out) == 1


def test_holding_an_intermediate_changes_the_key(fake):
    x = _x(0)
    y = (x * 2.0).sum()
    mx.eval(y)
    h = x * 2.0
    z = h.sum()
    mx.eval(z)
    assert len(_entries()) == 2
    np.testing.assert_array_equal(np.array(h), np.array(x) * 2.0)


def test_shapes_and_dtypes_key_separately(fake):
    for shape in [(3, 4), (3, 4), (5, 4), (3, 4)]:
        mx.eval(_x(1, shape) + 1.0)
    mx.eval(_x(1).astype(mx.float16) + 1.0)
    es = _entries()
    assert len(es) == 3 and sum(e.runner is not None for e in es) == 1


def test_siblings_keep_the_held_one(fake):
    for i in range(5):
        x = _x(i, (4, 4))
        a, b = mx.split(x + 1.0, 2, axis=0)
        c = a * 3.0
        mx.eval(c)
        xn = np.array(x) + 1.0
        np.testing.assert_array_equal(np.array(b), xn[2:])
        np.testing.assert_array_equal(np.array(c), xn[:2] * 3.0)
    assert fake.captures == 1


def test_a_single_sibling(fake):
    for i in range(5):
        x = _x(i, (1, 4))
        (a,) = mx.split(x * 2.0, 1, axis=0)
        mx.eval(a)
        np.testing.assert_array_equal(np.array(a), np.array(x) * 2.0)
    assert fake.captures == 1


def test_random_state_advances_as_evaluated_plainly(fake, monkeypatch):
    def draws():
        mx.random.seed(7)
        out = []
        for _ in range(6):
            a = mx.random.normal((3,)) * 2.0 + mx.random.uniform(shape=(3,))
            mx.eval(a)
            out.append(np.array(a))
        return out
    replayed = draws()
    assert fake.captures >= 1
    monkeypatch.setattr(EG, "ENABLED", [False])
    plain = draws()
    for r, p in zip(replayed, plain):
        np.testing.assert_array_equal(r, p)
    assert len({tuple(r) for r in replayed}) == 6


def test_host_synchronisation_evaluates_plainly(fake):
    for i in range(5):
        x = _x(i)
        y = host_read(x + 1.0)
        mx.eval(y)
        xn = np.array(x) + 1.0
        np.testing.assert_allclose(np.array(y), xn * xn.sum())
    (e,) = _entries()
    assert e.runner.status is CG.PLAIN and fake.captures == 0


def test_cheap_graphs_evaluate_plainly(fake, monkeypatch):
    monkeypatch.setattr(EG, "MIN_COST", 1e9)
    for i in range(4):
        mx.eval(_x(i) * 2.0 + 1.0)
    (e,) = _entries()
    assert e.cost is not None and e.runner is None and fake.captures == 0


def test_switched_off(fake, monkeypatch):
    monkeypatch.setattr(EG, "ENABLED", [False])
    for i in range(4):
        mx.eval(_x(i) + 1.0)
    assert not _entries() and fake.captures == 0


@pytest.mark.parametrize("limit", ["MAX_NODES", "MAX_BYTES", "MAX_LEAF_BYTES"])
def test_large_graphs_evaluate_plainly(fake, monkeypatch, limit):
    monkeypatch.setattr(EG, limit, 2 if limit == "MAX_NODES" else 40)
    for i in range(4):
        x = _x(i)  # (48 bytes)
        y = (x * 2.0 + 1.0) * 3.0
        mx.eval(y)
        np.testing.assert_array_equal(np.array(y), (np.array(x) * 2.0 + 1.0) * 3.0)
    assert not _entries() and fake.captures == 0


def test_cache_drops_the_oldest_and_releases_it(fake, monkeypatch):
    monkeypatch.setattr(EG, "CACHE_SIZE", 2)
    for _ in range(EG.SEEN + 1):
        mx.eval(_x(1) + 1.0)
    (first,) = _entries()
    assert first.runner.graph is not None
    for shape in [(2, 2), (5, 5)]:
        mx.eval(_x(1, shape) + 1.0)
    assert first not in _entries() and first.runner.status is CG.RELEASED


def test_graph_memory_is_bounded(fake, monkeypatch):
    # (each graph below holds 148, 196, then 244 bytes: two results, the leaves)
    monkeypatch.setattr(EG, "MAX_HELD_BYTES", 250)
    for shape in [(3, 4), (4, 4), (5, 4)]:
        for i in range(EG.SEEN + 1):
            mx.eval(_x(i, shape) * 2.0)
    es = _entries()
    assert len(es) == 1 and es[0].runner.status is CG.CAPTURED  # (the last one)
    assert EG._HELD[0] == es[0].bytes == 244
    EG.clear()
    assert EG._HELD[0] == 0


def _steps(n, hold):
    """n evaluations of one graph; `hold(i, y)` says whether step i's result is kept:
    (kept (i, result, its values then)), for checking they never change."""
    w = _x(0, (4, 2))
    kept = []
    for i in range(n):
        y = mx.maximum(_x(i) @ w + 1.0, 0.0)
        mx.eval(y)
        want = np.maximum(np.array(_x(i)) @ np.array(w) + 1.0, 0.0)
        np.testing.assert_array_equal(np.array(y), want)
        if hold(i, y):
            kept.append((i, y, want))
    return kept


def test_twins_hand_results_out_without_copies(fake, monkeypatch):
    """Results at least DIRECT_BYTES large go out where the graph wrote them, from two
    captures taking turns; a result still held keeps its values (the fake's replay writes
    its captured outputs, as on CUDA), and so does every result when all are held: the
    steps then run plainly."""
    monkeypatch.setattr(CG, "DIRECT_BYTES", 0)
    copies = []
    real = CG.GraphRunner._results

    def results(self, outs, groups, rest, res=None):
        copies.append(sum(len(g) for g in groups) + len(rest))
        return real(self, outs, groups, rest, res)
    monkeypatch.setattr(CG.GraphRunner, "_results", results)
    # steps 4 to 7 replay (3 is the capture); 6 and 7 are held, so 8 and 9 run plainly
    kept = _steps(10, lambda i, y: i in (6, 7))
    (e,) = _entries()
    r = e.runner
    assert fake.captures == 2 and r.twins is not None and r.twins.direct == [0]
    assert r.replays == 4 and not copies
    for _, y, want in kept:
        np.testing.assert_array_equal(np.array(y), want)
    del kept, y, want
    _steps(4, lambda i, y: False)  # (those gone: replays again)
    assert r.replays == 8
    for _, y, want in _steps(6, lambda i, y: True):
        np.testing.assert_array_equal(np.array(y), want)
    assert r.replays == 10 and not copies


def test_small_results_are_copied_out(fake):
    """Below DIRECT_BYTES results are copied out of one capture, so holding them for good
    keeps no graph from replaying."""
    kept = _steps(10, lambda i, y: True)
    (e,) = _entries()
    assert fake.captures == 1 and e.runner.twins is None
    assert e.runner.replays == 10 - EG.SEEN - 1
    for _, y, want in kept:
        np.testing.assert_array_equal(np.array(y), want)


@pytest.fixture
def gpu_replays(monkeypatch):
    """Real replays on the GPU, for graphs however cheap, kept whatever their steps take."""
    monkeypatch.setattr(EG, "MIN_COST", 0.0)
    monkeypatch.setattr(EG, "SEEN", 3)
    monkeypatch.setattr(EG, "ROUNDS", 0)
    monkeypatch.setattr(EG, "MIN_STEPS", 1)
    EG.clear()
    yield
    EG.clear()


@pytest.mark.gpu
@gpu
def test_gpu_clear_cache_releases_the_graphs(gpu_replays):
    with mx.stream(mx.gpu):
        for i in range(EG.SEEN + 2):
            x = mx.array(np.full(64, i, np.float32))
            mx.eval(mx.exp((x * 2.0 + 1.0) * 3.0))
    (e,) = [e for e in _entries() if e.runner is not None]
    assert e.runner.status is CG.CAPTURED
    mx.clear_cache()
    assert not _entries() and e.runner.status is CG.RELEASED


def test_transforms_still_trace(fake):
    def f(x):
        return (x * x).sum()
    for i in range(4):
        x = _x(i)
        g = mx.grad(f)(x)
        mx.eval(g)
        np.testing.assert_array_equal(np.array(g), 2 * np.array(x))


@pytest.mark.gpu
@gpu
def test_gpu_transformer_forward_replays_as_evaluated(gpu_replays, monkeypatch):
    import ember.nn as nn
    with mx.stream(mx.gpu):
        mx.random.seed(0)
        net = nn.Transformer(32, 4, 1, 1, 64, dropout=0.0)
        mask = nn.MultiHeadAttention.create_additive_causal_mask(8)
        xs = [mx.random.normal((2, 8, 32)) for _ in range(6)]
        mx.eval(net.parameters(), xs)

        def outs():
            return [np.array(net(x, x, mask, mask, None)) for x in xs]
        monkeypatch.setattr(EG, "ENABLED", [False])
        plain = outs()
        monkeypatch.setattr(EG, "ENABLED", [True])
        replayed = outs()
    runners = [e.runner for e in _entries() if e.runner is not None]
    assert runners and runners[0].status is CG.CAPTURED and runners[0].replays >= 1
    for p, r in zip(plain, replayed):
        np.testing.assert_array_equal(p, r)


@pytest.mark.gpu
@gpu
def test_gpu_train_steps_match_plain(gpu_replays, monkeypatch):
    import ember.nn as nn
    import ember.optimizers as optim

    def losses(enabled):
        monkeypatch.setattr(EG, "ENABLED", [enabled])
        EG.clear()
        with mx.stream(mx.gpu):
            mx.random.seed(1)
            model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
            opt = optim.AdamW(1e-2)
            x = mx.random.normal((8, 16))
            y = mx.random.normal((8, 4))
            step = nn.value_and_grad(model, lambda m: ((m(x) - y) ** 2).mean())
            out = []
            for _ in range(8):
                loss, g = step(model)
                opt.update(model, g)
                mx.eval(loss, model.parameters(), opt.state)
                out.append(loss.item())
        return out, [e.runner for e in _entries() if e.runner is not None]
    plain, _ = losses(False)
    replayed, runners = losses(True)
    assert any(r.status is CG.CAPTURED and r.replays for r in runners)
    assert plain == replayed
