"""CUDA-graph replay of compiled calls (`ember.core._backend.cudagraph`).

The runner's bookkeeping (when it captures, what it copies in and out, when it gives up,
what eviction frees) is tested on any device with a fake graph that replays by running the
tape again into the captured output buffers (so a result handed out without a copy would
be overwritten, as on CUDA). The `gpu` tests run the real thing and compare with eager."""

import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from ember.core._backend import cudagraph as CG
from ember.core._backend import eager_graphs as EG
from ember.core._backend.kernels import register
from ember.core.array import node
from ember.core.primitives.base import Primitive
from ember.core.transforms import compile as C
from tests.core.compile_runs import gpt_train, train
from tests.helpers import np_of

HAS_CUDA = torch.cuda.is_available()

# -- primitives that cannot be captured --------------------------------------------------------

_SYNC = [False]       # the fake's checked run: host synchronisation raises
_CAPTURING = [False]  # the fake is capturing


class HostRead(Primitive):
    """x * sum(x), reading the sum on the host (`.item()`)."""

    __slots__ = ()
    name = "HostRead"


class CaptureHostile(Primitive):
    """x + 1, by a kernel that raises while a graph is captured."""

    __slots__ = ()
    name = "CaptureHostile"


@register(HostRead)
def _host_read(p, x):
    if _SYNC[0] or _CAPTURING[0]:
        raise RuntimeError("called a synchronizing CUDA operation")
    return x * x.sum().item()


@register(CaptureHostile)
def _capture_hostile(p, x):
    if _CAPTURING[0] or (x.is_cuda and torch.cuda.is_current_stream_capturing()):
        raise RuntimeError("operation not permitted when stream is capturing")
    return x + 1


def host_read(x):
    return node(x._shape, x._dtype, HostRead(), (x,), x._stream)


def capture_hostile(x):
    return node(x._shape, x._dtype, CaptureHostile(), (x,), x._stream)


# -- the fake graph ------------------------------------------------------------------------------

class FakeGraph:
    def __init__(self, run, static_in, static_out):
        self.run, self.static_in, self.static_out = run, static_in, static_out

    def replay(self):
        new = self.run(*self.static_in)
        outs = self.static_out
        if not isinstance(outs, tuple):
            outs, new = (outs,), (new,)
        for o, n in zip(outs, new):
            if o is not n:
                o.copy_(n)  # the next replay overwrites the captured outputs


class FakeEvent:
    """A timing event that reads the fake device's clock (`now`, ms) when recorded."""

    def __init__(self, fake):
        self.fake = fake
        self.t = None

    def record(self, stream=None):
        self.t = self.fake.now

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return end.t - self.t


class Fake:
    def __init__(self):
        self.captures = 0
        self.now = 0.0  # the device's clock that timing events read, in ms

    def event(self):
        return FakeEvent(self)

    def checked_run(self, run, tensors):
        _SYNC[0] = True
        try:
            return run(*tensors)
        finally:
            _SYNC[0] = False

    def capture(self, run, tensors, static_in, device, pool=None):
        out = None if tensors is None else run(*tensors)
        _CAPTURING[0] = True
        try:
            static_out = run(*static_in)
        finally:
            _CAPTURING[0] = False
        self.captures += 1
        return out, FakeGraph(run, static_in, static_out), static_out


@pytest.fixture
def fake(monkeypatch):
    f = Fake()
    monkeypatch.setattr(CG, "_backend_for", lambda tape: f if tape.steps else None)
    monkeypatch.setattr(CG, "GRAPHS", [True])
    return f


@pytest.fixture
def copies(monkeypatch):
    """The tensors copied into static input buffers, per multi-tensor copy (of compiled
    calls: the replays of eager evaluations are off)."""
    monkeypatch.setattr(EG, "ENABLED", [False])
    seen = []
    real = CG._copy_

    def counted(dst, src):
        seen.append(len(src))
        return real(dst, src)
    monkeypatch.setattr(CG, "_copy_", counted)
    return seen


def _graph(cf):
    (tape,) = C.tapes(cf)
    return tape.graph


def _np(a):
    return np_of(a)


def R(*shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return mx.array(rng.uniform(-1.0, 1.0, shape).astype(dtype))


# -- the runner, on a fake graph ----------------------------------------------------------------

def _chain(x, y):
    for _ in range(5):
        x = mx.exp(-x * x) * y + mx.sin(x)
    return x


def test_captures_on_the_second_run_then_replays(fake):
    cf = mx.compile(_chain)
    results = []
    for i in range(6):
        x, y = R(4, 5, seed=i), R(5, seed=10 + i)
        out = cf(x, y)
        mx.eval(out)
        results.append((out, _np(_chain(x, y))))
        g = _graph(cf)
        assert g.status == (CG.WARMING if i == 0 else CG.CAPTURED)
    assert fake.captures == 1 and g.replays == 4
    # every result kept its value through the later replays
    for out, want in results:
        np.testing.assert_allclose(_np(out), want, rtol=1e-6, atol=1e-6)


def test_inputs_passed_again_are_not_copied(fake, copies):
    cf = mx.compile(lambda x, y: x * 2 + y)
    x, y = R(3, seed=1), R(3, seed=2)
    for _ in range(2):
        mx.eval(cf(x, y))
    n = len(copies)  # the capture's own copy
    for _ in range(3):
        out = cf(x, y)
        np.testing.assert_allclose(_np(out), _np(x * 2 + y), rtol=1e-6)
    assert len(copies) == n  # nothing to copy: the same tensors again
    y2 = R(3, seed=3)
    out = cf(x, y2)
    np.testing.assert_allclose(_np(out), _np(x * 2 + y2), rtol=1e-6)
    assert copies[n:] == [1]  # only the new one
    out = cf(x, y)
    np.testing.assert_allclose(_np(out), _np(x * 2 + y), rtol=1e-6)
    assert copies[n:] == [1, 1]


def test_input_changed_between_replays_with_the_same_values_elsewhere(fake):
    # a new array holding other values must be copied even when its twin came before
    cf = mx.compile(lambda x: x + 1)
    for i in range(5):
        x = mx.full((4,), float(i))
        np.testing.assert_array_equal(_np(cf(x)), np.full(4, i + 1.0, np.float32))


def test_results_reuse_buffers_nothing_holds(fake):
    # a train step's state: this call's results are the next call's inputs, and the
    # buffers of two calls ago are free again; held ones (or their views) are never reused
    cf = mx.compile(lambda a, b: (a * 2, b + 1))
    a, b = R(3, seed=1), R(2, seed=2)
    ptrs, objs, kept, views = [], [], [], []
    for i in range(10):
        a, b = cf(a, b)
        mx.eval(a, b)
        ptrs.append((a._data.data_ptr(), b._data.data_ptr()))
        objs.append(weakref.ref(a._data))
        if i == 6:
            kept.append((b, _np(b)))
        if i == 7:
            v = a[1:]
            mx.eval(v)
            views.append((v, _np(v)))
    np.testing.assert_allclose(_np(a), _np(R(3, seed=1)) * 2 ** 10, rtol=1e-6)
    np.testing.assert_allclose(_np(b), _np(R(2, seed=2)) + 10, rtol=1e-6)
    # replays from the third call; the results come back as inputs in the fourth and the
    # fifth, and are carried from the fifth, in two sets of buffers
    assert ptrs[6] == ptrs[4] and ptrs[7] == ptrs[5] and ptrs[4] != ptrs[5]
    assert ptrs[8][1] != ptrs[6][1] and ptrs[9][0] != ptrs[7][0]  # held: new buffers
    for arr, want in kept + views:
        np.testing.assert_array_equal(_np(arr), want)
    # every result is a tensor of its own (caches keyed by identity see new results)
    assert objs[-1]() is a._data and objs[-3]() is not a._data


def _carried_inputs(monkeypatch):
    """(runner, inputs a replay copies into static buffers) per replay: carried ones are
    not copied."""
    seen = []
    real = CG.GraphRunner._copy_in

    def spy(self, tensors, skip):
        n = [i for i, t in enumerate(tensors) if self.seen[i]() is not t and i not in skip]
        seen.append((self, len(n)))
        return real(self, tensors, skip)
    monkeypatch.setattr(CG.GraphRunner, "_copy_in", spy)
    return seen


def _copied(seen, cf):
    g = _graph(cf)
    return [n for r, n in seen if r is g]


def test_state_that_comes_back_is_carried_without_copies(fake, monkeypatch):
    # a train step: (weights, momentum) in, new ones out, the batch changing every call
    copied = _carried_inputs(monkeypatch)

    def step(w, m, x):
        g = (w * x).sum() * x
        m = 0.9 * m + g
        return w - 0.1 * m, m, (w * x).sum()

    cf = mx.compile(step)
    w, m = R(6, seed=1), mx.zeros((6,))
    ew, em = w, m
    for i in range(9):
        x = R(6, seed=20 + i)
        w, m, loss = cf(w, m, x)
        ew, em, eloss = step(ew, em, x)
        np.testing.assert_allclose(_np(w), _np(ew), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_np(loss), _np(eloss), rtol=1e-5, atol=1e-6)
    g = _graph(cf)
    assert g.carry is not None and [p[1] for p in g.carry.pairs] == [0, 1]
    # replays 3 and 4 copy w, m and x; from the fifth call on only the batch
    assert _copied(copied, cf) == [3, 3] + [1] * 5


def test_carried_state_and_other_inputs_mix(fake):
    # after the state is carried, a call passing other arrays (a restored checkpoint),
    # or the state of an older step that is still held, gets the right values
    cf = mx.compile(lambda a, b: (a * 2, b + 1))
    a, b = R(3, seed=1), R(2, seed=2)
    for _ in range(6):
        a, b = cf(a, b)
        mx.eval(a, b)
    assert _graph(cf).carry is not None
    old_a, old_b = a, b
    a, b = cf(a, b)
    mx.eval(a, b)
    a, b = cf(R(3, seed=5), b)  # a new array in one carried position
    np.testing.assert_allclose(_np(a), _np(R(3, seed=5)) * 2, rtol=1e-6)
    a, b = cf(old_a, old_b)  # the state of two calls ago, held all along
    np.testing.assert_allclose(_np(a), _np(old_a) * 2, rtol=1e-6)
    np.testing.assert_allclose(_np(b), _np(old_b) + 1, rtol=1e-6)
    for _ in range(3):
        a, b = cf(a, b)
        mx.eval(a, b)
    np.testing.assert_allclose(_np(a), _np(old_a) * 2 ** 4, rtol=1e-6)
    np.testing.assert_allclose(_np(b), _np(old_b) + 4, rtol=1e-6)
    np.testing.assert_allclose(_np(old_b), _np(R(2, seed=2)) + 6, rtol=1e-6)


def test_a_single_result_is_carried_and_fresh_inputs_are_not(fake, monkeypatch):
    copied = _carried_inputs(monkeypatch)
    cf = mx.compile(lambda x: x * 0.5 + 1)
    x = R(5)
    want = _np(x)
    for _ in range(8):
        x = cf(x)
        mx.eval(x)
        want = want * 0.5 + 1
    np.testing.assert_allclose(_np(x), want, rtol=1e-6)
    assert _graph(cf).carry is not None and _copied(copied, cf)[2:] == [0] * 4
    cg = mx.compile(lambda x: x * 2)
    for i in range(8):
        mx.eval(cg(R(5, seed=i)))
    assert _graph(cg).carry is None and _graph(cg).learn == 0


def test_state_is_not_carried_without_room_for_it(fake, monkeypatch):
    monkeypatch.setattr(CG, "_room_for", lambda device, nbytes: False)
    cf = mx.compile(lambda a, b: (a * 2, b + 1))
    a, b = R(3, seed=1), R(2, seed=2)
    for _ in range(8):
        a, b = cf(a, b)
        mx.eval(a, b)
    g = _graph(cf)
    assert g.status == CG.CAPTURED and g.carry is None and g.learn == 0
    np.testing.assert_allclose(_np(a), _np(R(3, seed=1)) * 2 ** 8, rtol=1e-6)
    np.testing.assert_allclose(_np(b), _np(R(2, seed=2)) + 8, rtol=1e-6)


def test_adam_writes_the_carried_state_where_it_is_carried(fake, monkeypatch):
    # the fused Adam kernel (here through Triton's interpreter) writes new parameters and
    # moments straight into the carrying buffers: the graph copies none of them
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    copied = []  # per replay by the carrying graphs: the shapes of the tensors copied
    real, real_replay = CG._copy_, CG._Carry.replay

    def counted(dst, src):
        if copied and copied[-1] is not None:
            copied[-1] += [t.shape for t in dst]
        return real(dst, src)

    def replay(self, runner, tensors):
        copied.append([])
        try:
            return real_replay(self, runner, tensors)
        finally:
            copied.append(None)
    monkeypatch.setattr(CG, "_copy_", counted)
    monkeypatch.setattr(CG._Carry, "replay", replay)

    def run(compiled):
        mx.random.seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
        x, y = R(5, 6, seed=1), R(5, 2, seed=2)
        opt = optim.AdamW(learning_rate=1e-2)
        return train(model, opt, lambda m, x, y: ((m(x) - y) ** 2).mean(), x, y, 10,
                     compiled)

    losses, params, step = run(True)
    g = C.tapes(step)[-1].graph
    assert g.carry is not None and len(g.carry.pairs) >= 12  # 4 parameters, m, v
    shapes = [c for c in copied if c is not None]
    # the first carried replay copies the state in; later ones copy no weight or moment of
    # a weight (the random key and the step count are carried by copies)
    assert len(shapes) >= 3 and any(len(sh) == 2 for sh in shapes[0])
    assert all(len(sh) < 2 for c in shapes[1:] for sh in c)
    want_losses, want_params, _ = run(False)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    for k in want_params:
        np.testing.assert_allclose(params[k], want_params[k], rtol=1e-5, atol=1e-6)


def _many(x, n):
    c = mx.array([1.0, 2.0, 3.0])
    return (x, x.reshape(3, 2), c, x.T, x > 0, (x * 10).astype(mx.int32), n + 1,
            mx.sum(x) * c)


def test_outputs_that_are_inputs_constants_views_and_other_dtypes(fake):
    cf = mx.compile(_many)
    kept = []
    for i in range(5):
        x, n = R(2, 3, seed=i), mx.array(i)
        outs = cf(x, n)
        mx.eval(outs)
        kept.append((outs, [(o.shape, o.dtype, _np(o)) for o in _many(x, n)]))
    assert _graph(cf).status == CG.CAPTURED
    for outs, want in kept:
        assert len(outs) == len(want)
        for o, (shape, dtype, w) in zip(outs, want):
            assert (o.shape, o.dtype) == (shape, dtype)
            np.testing.assert_allclose(_np(o), w, rtol=1e-6)


def test_host_synchronisation_runs_plainly(fake, monkeypatch, capsys):
    monkeypatch.setattr(CG, "DEBUG", [True])
    cf = mx.compile(lambda x: host_read(x * 2) - 1)
    for i in range(4):
        x = R(3, seed=i)
        xn = _np(x) * 2
        np.testing.assert_allclose(_np(cf(x)), xn * xn.sum() - 1, rtol=1e-5)
    g = _graph(cf)
    assert g.status == CG.PLAIN and "synchronises with the host" in g.reason
    assert fake.captures == 0
    err = capsys.readouterr().err.splitlines()
    assert len([ln for ln in err if ln.startswith("[compile] CUDA graph")]) == 1
    assert "runs without a graph: synchronises with the host" in err[0]


def test_capture_failure_runs_plainly(fake, monkeypatch, capsys):
    monkeypatch.setattr(CG, "DEBUG", [True])
    cf = mx.compile(lambda x: capture_hostile(x) * 3)
    for i in range(4):
        x = R(3, seed=i)
        np.testing.assert_allclose(_np(cf(x)), (_np(x) + 1) * 3, rtol=1e-6)
    g = _graph(cf)
    assert g.status == CG.PLAIN and g.reason.startswith("capture failed")
    assert "not permitted when stream is capturing" in g.reason
    assert "capture failed" in capsys.readouterr().err


def test_inputs_on_another_device_postpone_then_give_up(fake):
    cf = mx.compile(lambda x: x - 1)
    x = R(3)
    out = cf(x)
    g = _graph(cf)
    g.device = torch.device("meta")  # as if the tape lived on another device than x
    for i in range(CG.UNFIT_LIMIT):
        assert g.status == CG.WARMING
        np.testing.assert_allclose(_np(out), _np(x) - 1)
        out = cf(x)
    mx.eval(out)
    assert g.status == CG.PLAIN and "not meta" in g.reason


def test_graphs_switched_off(fake, monkeypatch):
    monkeypatch.setattr(CG, "GRAPHS", [False])
    cf = mx.compile(_chain)
    x, y = R(2, 2), R(2)
    for _ in range(4):
        np.testing.assert_allclose(_np(cf(x, y)), _np(_chain(x, y)), rtol=1e-6)
    assert _graph(cf).status == CG.WARMING and fake.captures == 0
    # switched off after the capture: the graph stays, unused
    monkeypatch.setattr(CG, "GRAPHS", [True])
    for _ in range(3):
        mx.eval(cf(x, y))
    replays = _graph(cf).replays
    monkeypatch.setattr(CG, "GRAPHS", [False])
    np.testing.assert_allclose(_np(cf(x, y)), _np(_chain(x, y)), rtol=1e-6)
    assert _graph(cf).replays == replays


def test_environment_switch():
    code = ("from ember.core._backend import cudagraph as CG; "
            "print(CG.GRAPHS[0], CG.DEBUG[0])")
    for env, want in [({"EMBER_CUDA_GRAPHS": "0", "EMBER_COMPILE_DEBUG": "1"}, ["False", "True"]),
                      ({}, ["True", "False"])]:  # graphs are on by default
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**env, "PATH": ""},
                             cwd=C.__file__.rsplit("/ember/", 1)[0])
        assert out.stdout.split() == want


@pytest.fixture
def cache_of_one():
    n = C.cache_size()
    C.set_cache_size(1)
    yield
    C.set_cache_size(n)


def test_eviction_releases_the_graph(fake, cache_of_one, monkeypatch, capsys):
    monkeypatch.setattr(CG, "DEBUG", [True])
    cf = mx.compile(lambda x: mx.exp(x) + 1)
    x = R(4)
    for _ in range(3):
        mx.eval(cf(x))
    g = _graph(cf)
    fg = weakref.ref(g.graph)
    buffers = [weakref.ref(t) for t in g.static_in + g.static_out]
    pending = cf(R(4, seed=5))  # built before the eviction, evaluated after it
    mx.eval(cf(R(5)))  # another shape: the only slot goes to it
    assert C.stats(cf)["evictions"] == 1
    assert g.status == CG.RELEASED and g.graph is None
    gc.collect()
    assert fg() is None and all(b() is None for b in buffers)
    np.testing.assert_allclose(_np(pending), np.exp(_np(R(4, seed=5))) + 1, rtol=1e-6)
    assert "released" in capsys.readouterr().err


def test_clear_cache_and_a_dropped_function_release_graphs(fake):
    cfs = [mx.compile(lambda x: x * 2), mx.compile(lambda x: x * 3)]
    for cf in cfs:
        for _ in range(3):
            mx.eval(cf(R(2)))
    graphs = [_graph(cf) for cf in cfs]
    C.clear_cache()
    assert all(g.status == CG.RELEASED for g in graphs)
    cf = mx.compile(lambda x: x * 4)
    for _ in range(3):
        mx.eval(cf(R(2)))
    g = _graph(cf)
    del cf
    gc.collect()
    assert g.status == CG.RELEASED


def test_shapeless_graph_only_for_the_traced_shapes(fake):
    cf = mx.compile(lambda x: mx.exp(x) * 2, shapeless=True)
    for n in (3, 3, 5, 3, 5, 7, 3):
        x = R(n, seed=n)
        np.testing.assert_allclose(_np(cf(x)), np.exp(_np(x)) * 2, rtol=1e-6)
    g = _graph(cf)
    assert g.status == CG.CAPTURED and g.replays == 2


# -- a train step ---------------------------------------------------------------------------------

def _train(compiled, steps=20, dropout=0.25):
    mx.random.seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.ReLU(), nn.Dropout(dropout),
                          nn.Linear(16, 1))
    opt = optim.AdamW(learning_rate=1e-2, weight_decay=0.1)
    rng = np.random.default_rng(0)
    x = mx.array(rng.normal(size=(32, 6)).astype(np.float32))
    y = mx.array(rng.normal(size=(32, 1)).astype(np.float32))
    return train(model, opt, lambda m, x, y: ((m(x) - y) ** 2).mean(), x, y, steps, compiled)


def _check_train():
    want, wp, _ = _train(False)
    got, gp, step = _train(True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for k in wp:
        np.testing.assert_allclose(gp[k], wp[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert len(set(np.round(got, 6))) == len(got)  # fresh dropout masks every step
    # the second trace (the optimizer state appears) is the one that replays
    g = C.tapes(step)[-1].graph
    assert g.status == CG.CAPTURED and g.replays >= 16


def test_train_step_with_dropout_on_fake_graphs(fake):
    _check_train()


# -- on CUDA ------------------------------------------------------------------------------------

gpu = pytest.mark.gpu


@pytest.fixture
def on_gpu(monkeypatch):
    monkeypatch.setattr(CG, "GRAPHS", [True])
    with mx.stream(mx.gpu):
        yield


CHAINS = {
    "exp_mul_sin": (_chain, [(64, 33), (33,)], np.float32),
    "where_max": (lambda x, y: mx.where(x > y, mx.maximum(x, 0.5) * 2, y - x),
                  [(8, 16), (8, 16)], np.float32),
    "bf16": (lambda x, y: (x * y + 1).astype(mx.bfloat16) * 3, [(128,), (128,)], np.float32),
    "int": (lambda x, y: (x * 7).astype(mx.int32) // 3 + (y > 0), [(5, 5), (5,)], np.float32),
    "reduce_broadcast": (lambda x, y: mx.sum(x, axis=1, keepdims=True) * y + mx.max(x),
                         [(16, 8), (1, 8)], np.float32),
}


@gpu
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_gpu_compiled_with_graphs_equals_eager(name, on_gpu):
    fn, shapes, dt = CHAINS[name]
    cf = mx.compile(fn)
    kept = []
    for i in range(6):
        args = [R(*s, seed=7 * i + j, dtype=dt) for j, s in enumerate(shapes)]
        out = cf(*args)
        mx.eval(out)
        kept.append((out, _np(fn(*args))))
    g = _graph(cf)
    assert g.status == CG.CAPTURED and g.replays == 4, g
    for out, want in kept:
        assert out.dtype == mx.array(want).dtype or out.dtype == mx.bfloat16
        np.testing.assert_allclose(_np(out.astype(mx.float32)), want.astype(np.float32),
                                   rtol=1e-5, atol=1e-5)


def _attention(q, k, w):
    s = mx.softmax((q @ k.T) * 0.125, axis=-1)
    return s @ w, s.sum(axis=0)


@gpu
def test_gpu_matmul_softmax(on_gpu):
    cf = mx.compile(_attention)
    kept = []
    for i in range(5):
        args = [R(32, 64, seed=i), R(48, 64, seed=10 + i), R(48, 16, seed=20 + i)]
        outs = cf(*args)
        mx.eval(outs)
        kept.append((outs, [_np(o) for o in _attention(*args)]))
    assert _graph(cf).status == CG.CAPTURED
    for outs, want in kept:
        for o, w in zip(outs, want):
            np.testing.assert_allclose(_np(o), w, rtol=1e-4, atol=1e-5)


@gpu
def test_gpu_replay_after_input_change(on_gpu, copies):
    cf = mx.compile(lambda x, y: mx.exp(x) @ y)
    x, y = R(16, 16), R(16, 4, seed=1)
    outs = []
    for i in range(8):
        if i in (4, 6):
            y = R(16, 4, seed=i)
        outs.append((cf(x, y), _np(mx.exp(x) @ y)))
        mx.eval(outs[-1][0])
    for o, want in outs:
        np.testing.assert_allclose(_np(o), want, rtol=1e-5, atol=1e-5)
    assert _graph(cf).replays == 6
    assert copies == [2, 1, 1]  # the capture's copy, then only the two new y's


@gpu
def test_gpu_train_step_with_dropout(on_gpu):
    _check_train()


@gpu
def test_gpu_gpt_train_step(on_gpu):
    def run(compiled):
        return gpt_train(compiled, (32, 16, 32, 4, 2), (4, 17), 20, 0.1)

    want, wp, _ = run(False)
    got, gp, step = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for k in wp:
        np.testing.assert_allclose(gp[k], wp[k], rtol=1e-4, atol=1e-5, err_msg=k)
    g = C.tapes(step)[-1].graph
    assert g.status == CG.CAPTURED and g.replays >= 16, g


@gpu
def test_gpu_fallbacks_say_why(on_gpu, monkeypatch, capsys):
    monkeypatch.setattr(CG, "DEBUG", [True])
    monkeypatch.setattr(EG, "ENABLED", [False])  # (its runners say what they do too)
    cf = mx.compile(lambda x: host_read(x * 2) - 1)
    for i in range(3):
        x = R(3, seed=i)
        xn = _np(x) * 2
        np.testing.assert_allclose(_np(cf(x)), xn * xn.sum() - 1, rtol=1e-5)
    g = _graph(cf)
    assert g.status == CG.PLAIN and "synchronises with the host" in g.reason, g

    cf = mx.compile(lambda x: capture_hostile(x) * 3)
    for i in range(4):
        x = R(3, seed=i)
        np.testing.assert_allclose(_np(cf(x)), (_np(x) + 1) * 3, rtol=1e-6)
    g = _graph(cf)
    assert g.status == CG.PLAIN and g.reason.startswith("capture failed"), g
    # the device is fine after a failed capture
    np.testing.assert_allclose(_np(mx.exp(mx.zeros((3,)))), np.ones(3))

    cf = mx.compile(lambda x: x * 2)
    xc = mx.ones((3,), stream=mx.cpu)
    mx.eval(xc)
    for _ in range(CG.UNFIT_LIMIT + 1):
        np.testing.assert_allclose(_np(cf(xc)), np.full(3, 2.0))
    g = _graph(cf)
    assert g.status == CG.PLAIN and "cpu" in g.reason, g
    err = [ln for ln in capsys.readouterr().err.splitlines() if "CUDA graph" in ln]
    assert len(err) == 3, err


def test_cpu_tapes_get_no_runner(monkeypatch):
    monkeypatch.setattr(CG, "GRAPHS", [True])
    with mx.stream(mx.cpu):
        cf = mx.compile(lambda x: x + 1)
        for _ in range(3):
            mx.eval(cf(mx.ones((2,))))
    assert _graph(cf) is None


@gpu
def test_gpu_eviction_frees_graph_memory(on_gpu, cache_of_one):
    def f(x):
        for _ in range(4):
            x = mx.exp(x) @ x  # intermediates of 4 MB live in the graph's pool
        return x.sum()

    cf = mx.compile(f)
    x = R(1024, 1024)
    mx.eval(x)
    for _ in range(3):
        mx.eval(cf(x))
    g = _graph(cf)
    assert g.status == CG.CAPTURED
    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated()
    torch.cuda.empty_cache()
    reserved = torch.cuda.memory_reserved()
    mx.eval(cf(R(3, 3)))  # evicts
    assert g.status == CG.RELEASED
    gc.collect()
    torch.cuda.synchronize()
    # the static input buffer (4 MB) and the graph's pool go
    assert torch.cuda.memory_allocated() <= held - 4 * 1024 * 1024
    torch.cuda.empty_cache()
    assert torch.cuda.memory_reserved() < reserved
