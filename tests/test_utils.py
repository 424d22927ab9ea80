"""ember.utils against upstream mlx.utils: signatures, results and exceptions on many trees."""

import copy
import enum
import inspect
import signal
from collections import OrderedDict, namedtuple

import mlx.core as mlx_mx
import mlx.nn as mlx_nn
import mlx.utils as upstream
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember.core as em_mx
import ember.nn as em_nn
import ember.utils as ours

NAMES = ["tree_flatten", "tree_unflatten", "tree_map", "tree_map_with_path", "tree_reduce",
         "tree_merge"]

P = namedtuple("P", "x y")
E = namedtuple("E", "")


class MyList(list):
    pass


def _ids(x, out, depth=0):
    """ids of x and of everything inside it (keys included)."""
    out.add(id(x))
    if depth < 20 and isinstance(x, (list, tuple, dict)):
        for child in x.items() if isinstance(x, dict) else x:
            _ids(child, out, depth + 1)
    return out


def _same_value(a, b, ids_a=frozenset(), ids_b=frozenset(), path="tree"):
    """Equal values of the same types all the way down (dict order included), where a node
    is one of its inputs (by identity, `ids_a` and `ids_b`) in `a` where it is in `b`."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    assert (id(a) in ids_a) == (id(b) in ids_b), f"{path}: identity with the inputs differs"
    if isinstance(b, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in b:
            _same_value(a[k], b[k], ids_a, ids_b, f"{path}.{k}")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same_value(x, y, ids_a, ids_b, f"{path}.{i}")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _call(fn, args, kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as err:  # noqa: BLE001 - compared below
        return None, err


def same(name, *args, **kwargs):
    """ember.utils.<name> behaves as mlx.utils.<name> on these arguments."""
    ours_kwargs = dict(kwargs)
    if isinstance(kwargs.get("destination"), (list, dict)):  # filled in place: one each
        ours_kwargs["destination"] = copy.copy(kwargs["destination"])
    want, werr = _call(getattr(upstream, name), args, kwargs)
    got, gerr = _call(getattr(ours, name), args, ours_kwargs)
    if werr is not None:
        assert gerr is not None, f"{name}{args}: upstream raised {werr!r}, we returned {got!r}"
        assert type(gerr) is type(werr), f"{name}{args}: {gerr!r} vs upstream {werr!r}"
        if not isinstance(werr, RecursionError):  # the message names where it stopped
            assert str(gerr) == str(werr)
        return
    assert gerr is None, f"{name}{args}: we raised {gerr!r}, upstream returned {want!r}"
    _same_value(got, want, _ids((args, ours_kwargs), set()), _ids((args, kwargs), set()))


@pytest.mark.parametrize("name", NAMES)
def test_signatures(name):
    assert inspect.signature(getattr(ours, name)) == inspect.signature(getattr(upstream, name))
    assert str(inspect.signature(getattr(ours, name))) == \
        str(inspect.signature(getattr(upstream, name)))


TREES = [
    5, None, "abc", [], (), {}, [1], (1,), {"a": 1}, [[[0]]], [1, [2, 3]],
    {"a": [1, {"b": 2}], "c": None, "d": ()},
    P(1, 2), P([1, 2], {"z": P(3, None)}), E(), [None, None], {"x": {}, "y": []},
    {1: "int key", (2, 3): "tuple key"}, OrderedDict(b=1, a=2), MyList([1, [2]]),
    {"layers": [{"w": 1.5, "b": 0}, {"w": 2.5, "b": 1}], "head": (True, b"x")},
    ([[[]]],), [{}, [{}], ({},)],
]


@pytest.mark.parametrize("tree", TREES, ids=repr)
def test_tree_flatten(tree):
    same("tree_flatten", tree)
    same("tree_flatten", tree, prefix="x")
    same("tree_flatten", tree, prefix=".hello")
    same("tree_flatten", tree, "abc")
    same("tree_flatten", tree, destination={})
    same("tree_flatten", tree, destination=[("z", 0)])
    same("tree_flatten", tree, destination={"z": 0, "0": "old"})
    same("tree_flatten", tree, is_leaf=lambda x: isinstance(x, tuple))
    same("tree_flatten", tree, is_leaf=lambda x: isinstance(x, list))
    same("tree_flatten", tree, is_leaf=lambda x: isinstance(x, dict) and len(x) == 1)
    same("tree_flatten", tree, destination=set())
    same("tree_flatten", tree, destination=())
    same("tree_flatten", tree, destination=5)


def test_tree_flatten_fills_the_given_destination():
    for dest_m, dest_e in (([], []), ({}, {})):
        r_m = upstream.tree_flatten({"a": [1, 2]}, destination=dest_m)
        r_e = ours.tree_flatten({"a": [1, 2]}, destination=dest_e)
        assert (r_m is dest_m) and (r_e is dest_e)
        _same_value(dest_e, dest_m)


class _Logged(list):
    """A list destination recording which method added each pair."""
    def append(self, kv):
        super().append(("append", kv))

    def extend(self, kvs):
        super().extend(("extend", kv) for kv in kvs)


class _LoggedDict(dict):
    def __setitem__(self, k, v):
        super().__setitem__(k, ("setitem", v))

    def update(self, pairs):
        for k, v in pairs:
            super().__setitem__(k, ("update", v))


@pytest.mark.parametrize("dest", [_Logged, _LoggedDict, OrderedDict, MyList], ids=repr)
def test_tree_flatten_destination_subclasses(dest):
    for tree in [[1, [2, {"a": 3}]], 5, []]:
        same("tree_flatten", tree, destination=dest())
        same("tree_flatten", tree, destination=dest(), is_leaf=lambda x: x == [2, {"a": 3}])


def _deep(kind, n):
    tree = 0
    for _ in range(n):
        tree = [tree] if kind is list else (tree,) if kind is tuple else {"k": tree}
    return tree


DEPTH_CALLS = {
    "tree_flatten": lambda u, t: u.tree_flatten(t),
    "tree_map": lambda u, t: u.tree_map(lambda x: x, t),
    "tree_map rest": lambda u, t: u.tree_map(lambda x, y: x, t, t),
    "tree_map_with_path": lambda u, t: u.tree_map_with_path(lambda p, x: x, t),
    "tree_reduce": lambda u, t: u.tree_reduce(lambda a, x: a + x, t, 0),
    "tree_merge": lambda u, t: u.tree_merge(t, t, lambda a, b: a),
    "tree_unflatten": lambda u, t: u.tree_unflatten(upstream.tree_flatten(t)),
}


def _max_depth(call, kind):
    lo, hi = 1, 2000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            call(_deep(kind, mid))
            lo = mid
        except RecursionError:
            hi = mid - 1
    return lo


@pytest.mark.parametrize("kind", [list, tuple, dict], ids=repr)
@pytest.mark.parametrize("name", DEPTH_CALLS)
def test_deep_trees_hit_the_recursion_limit_as_upstream(name, kind):
    # a tree nested as deep as upstream handles works; one level more is a RecursionError
    call = DEPTH_CALLS[name]
    want = _max_depth(lambda t: call(upstream, t), kind)
    assert _max_depth(lambda t: call(ours, t), kind) == want


def _no_end(*_):
    raise TimeoutError("the walk of a cyclic tree does not end")


def test_cyclic_trees():
    # upstream recurses into a RecursionError; a walk that never ends fails on the alarm
    signal.signal(signal.SIGALRM, _no_end)
    signal.alarm(20)
    try:
        _cyclic_trees()
    finally:
        signal.alarm(0)


def _cyclic_trees():
    loop = [1]
    loop.append(loop)
    selfref = {"a": 1}
    selfref["b"] = selfref
    for tree in (loop, selfref):
        same("tree_flatten", tree)
        same("tree_map", lambda x: x, tree)
        same("tree_reduce", lambda a, x: a + x, tree, 0)


class _Fmt:
    """A key whose format() and str() differ."""
    def __format__(self, spec):
        return "formatted"

    def __str__(self):
        return "str"

    def __repr__(self):
        return "_Fmt()"


class _SKey(str, enum.Enum):
    A = "a"


class _IKey(enum.IntEnum):
    ONE = 1


class _NoBool:
    def __bool__(self):
        raise ValueError("no truth value")

    def __format__(self, spec):
        return "nobool"

    def __repr__(self):
        return "_NoBool()"


@pytest.mark.parametrize("tree", [
    {"a": 1, "b": [2, {"c": 3}]}, {"0": [1], "x.y": 2}, {_Fmt(): {_Fmt(): 1}},
    {_SKey.A: [1], _IKey.ONE: {_SKey.A: 2}}, [1, 2], 7], ids=repr)
@pytest.mark.parametrize("path", [None, "", "root", 0, 5, _Fmt(), _NoBool()], ids=repr)
def test_tree_map_with_path_keys(tree, path):
    # which paths are new strings (rather than a key itself) is observable too
    same("tree_map_with_path", lambda p, x: p, tree, path=path)
    same("tree_map_with_path", lambda p, x: (p, x), tree, path=path, is_leaf=lambda x: x == [1])
    same("tree_flatten", tree, "." + str(path))


FLATS = [
    [], {}, [("", 1)], [("", 1), ("", 2)], [("a", 1), ("a", 2)], [("a.b", 1), ("a.b", 2)],
    [("a.0", 1), ("a.2", 2)], [("0", 1), ("1", 2)], [("10", 1), ("2", 2)],
    [("-1", 1)], [("-1", 1), ("0", 2)], [("3", 1), ("-1", 2)], [("-2", 1)],
    [(" 1", 1), ("1", 2)], [(" 1", 1)], [("1 ", 1)], [("0", 1), ("00", 2)],
    [("1", 1), ("+1", 2)], [("1", 1), ("1", 2)], [("1", 1), ("a", 2)], [("1_0", 1)],
    [("\u0663", 1)], [("\u0663", 1), ("a", 2)], [("a", 1), ("0", 2)], [("\u00b2", 1)],
    [("\u00aa", 1), ("1", 2)], [("1e3", 1)], [("0x1", 1)], [("True", 1)], [("1.5", 1)],
    [("a", 1), ("a.b", 2)], [("a.b", 1), ("a", 2)], [("a..b", 1)], [("a.", 1)],
    [("b", 1), ("a", 2)], [("a", 1), ("", 2)], [("", 1), ("a", 2)], [("", 1), ("0", 2)],
    [("0", 1), ("0.a", 2)], [("0.a", 1), ("0", 2)], [("0", 1), ("1", 2), ("3", 3)],
    {"a.b": 1, "a.c": 2}, {"hello.world": 42}, [["a", 1]], (("a", 1),),
    [("layers.0.w", 1), ("layers.1.w", 2), ("layers.1.b", 3), ("head", 4)],
]


@pytest.mark.parametrize("flat", FLATS, ids=repr)
def test_tree_unflatten(flat):
    same("tree_unflatten", flat)


@pytest.mark.parametrize("tree", TREES, ids=repr)
def test_unflatten_inverts_flatten(tree):
    same("tree_unflatten", upstream.tree_flatten(tree))
    same("tree_unflatten", upstream.tree_flatten(tree, destination={}))


@pytest.mark.parametrize("tree", TREES, ids=repr)
def test_tree_map(tree):
    def double(x):
        return x * 2 if isinstance(x, (int, float)) else (x, "leaf")
    same("tree_map", double, tree)
    same("tree_map", lambda x, y: (x, y), tree, tree)
    same("tree_map", lambda x, y, z: (x, y, z), tree, tree, tree)
    same("tree_map", lambda x: "L", tree, is_leaf=lambda x: isinstance(x, tuple))
    same("tree_map", lambda x, y: (x, y), tree, 5)
    same("tree_map", lambda x, y: (x, y), tree, [9, 9])
    same("tree_map", lambda x, y: (x, y), tree, {"a": 7})
    same("tree_map_with_path", lambda p, x: (p, x), tree)
    same("tree_map_with_path", lambda p, x, y: (p, x, y), tree, tree)
    same("tree_map_with_path", lambda p, x: p, tree, path="root")
    same("tree_map_with_path", lambda p, x: p, tree, path=0)
    same("tree_map_with_path", lambda p, x: p, tree, path="")
    same("tree_map_with_path", lambda p, x: p, tree, is_leaf=lambda x: isinstance(x, dict))


def test_tree_map_rest_mismatches():
    same("tree_map", lambda x, y: x + y, [1, 2], [3, 4, 5])
    same("tree_map", lambda x, y: x + y, [1, 2], [3])
    same("tree_map", lambda x, y: x + y, {"a": 1}, {"b": 1})
    same("tree_map", lambda x, y: y, [1], 5)
    same("tree_map", lambda x, y: y, {"a": 1}, [5])
    same("tree_map", lambda x, y: y, (1, 2), [3, 4])
    same("tree_map", lambda x, y: y, P(1, 2), P(3, 4))
    same("tree_map", lambda x, y: (x, y), 1, [3, 4])
    same("tree_map_with_path", lambda p, x, y: y, {"a": 1}, {"a": 2, "b": 3})
    same("tree_map_with_path", lambda p, x, y: y, {"a": 1}, {"b": 3})


@pytest.mark.parametrize("tree", TREES, ids=repr)
def test_tree_reduce(tree):
    same("tree_reduce", lambda acc, x: acc + [x], tree, [])
    same("tree_reduce", lambda acc, x: (acc, x), tree)
    same("tree_reduce", lambda acc, x: (acc, x), tree, 0)
    same("tree_reduce", lambda acc, x: (acc, x), tree, None, lambda x: isinstance(x, list))
    same("tree_reduce", lambda acc, x: (acc, x), tree, is_leaf=lambda x: isinstance(x, tuple))


def test_tree_reduce_examples():
    same("tree_reduce", lambda a, x: a + x, {"a": [1, 2, 3], "b": [4, 5]}, 0)
    same("tree_reduce", lambda a, x: a + x, {"a": [1, 2], "b": (3,)})
    same("tree_reduce", lambda a, x: a + x, [None, 1])
    same("tree_reduce", lambda a, x: a + x, [])
    same("tree_reduce", lambda a, x: a + x, {}, 0)


MERGES = [
    ({"a": 1}, {"b": 2}), ({"a": 1}, {"a": 2}), ([1, None], [None, 2]), ([1], [None, 2, 3]),
    ((1,), [None, 2]), (None, None), ([], {"a": 1}), ({}, []), (1, [2]), ({"a": 1}, [2]),
    (P(1, None), P(None, 2)), ({"x": {}}, {"x": {"y": 1}}),
    ({"b": 1, "a": 2, "c": 3}, {"d": 1, "a": None}), ({"a": 1}, 1), (1, {"a": 1}),
    ([1], 1), ([1], {"a": 1}), (P(1, 2), {"a": 1}), (P(1, None), [None, 2, 3]),
    ([None, 2, 3], P(1, None)), ([None], [None]), ([[]], [{}]), ([[], 1], [{}]),
    (OrderedDict(a=1), {"b": 2}), ({"a": [1, {}]}, {"a": [None, {"c": 3}]}),
    ({"a": []}, {"a": None}), (5, None), (None, 5), (0, []), ([], ()), ([], [1]),
    ((), [1]), ([1], ()), ({}, {"a": 1}), ([], {}), ({}, [1]), ({"a": 1}, []), ([1], (2,)),
    ([None], (2,)), ((None,), [2]), ([], []), ((), ()), ({}, {}), ([], None), (None, []),
    ({}, None), ([], 5), (5, []), ({}, 5), ([None], []), ([], [None]), ((None,), []),
    ([], P(1, 2)), (P(1, 2), []), (P(None, None), [1]), ([[]], [[]]), ([1], [[]]),
    ([[]], [1]), ([{}], [[]]), ({"a": {}}, {"a": []}), ({"a": {}}, {"a": 1}),
    ({"a": []}, {"a": []}), ([[1]], [{"a": 1}]), ([[None]], [{}]), (OrderedDict(), []),
    ([], OrderedDict()), (OrderedDict(a=1), []), (OrderedDict(), {}), ((), E()), (E(), ()),
    (MyList(), []), ([], MyList()),
    (OrderedDict(), OrderedDict()), (MyList(), MyList()),
    (MyList([1]), [None, 2]), (0, 0), (False, None),
    ({"k%d" % i: i for i in range(20)}, {"k%d" % i: None for i in range(10, 30)}),
    ({i: i for i in range(9)}, {i: None for i in range(5, 40)}),
]


@pytest.mark.parametrize("a,b", MERGES, ids=repr)
def test_tree_merge(a, b):
    same("tree_merge", a, b)
    same("tree_merge", a, b, lambda x, y: ("M", x, y))
    same("tree_merge", b, a, merge_fn=lambda x, y: ("M", x, y))


def test_tree_merge_identity():
    # which input comes back (rather than a copy) is observable
    for a, b in [([1], []), ([], [1]), ((), ()), (None, [1]), ([1], None), ({}, 5)]:
        assert (ours.tree_merge(a, b) is a) == (upstream.tree_merge(a, b) is a)
        assert (ours.tree_merge(a, b) is b) == (upstream.tree_merge(a, b) is b)


def test_stop_iteration_from_fn():
    # upstream rebuilds lists and tuples from generators, which turn it into a RuntimeError
    def stop(*args):
        raise StopIteration
    for tree in [[1, 2], (1,), P(1, 2), {"a": [1]}, {"a": 1}]:
        same("tree_map", stop, tree)
        same("tree_map_with_path", stop, tree)
        same("tree_merge", tree, tree, stop)


def test_unflatten_needs_len():
    same("tree_unflatten", iter([("a", 1)]))
    same("tree_unflatten", (kv for kv in [("a.0", 1), ("a.1", 2)]))
    same("tree_unflatten", 5)
    same("tree_unflatten", None)
    same("tree_unflatten", [(1, 2)])


# -- random trees ------------------------------------------------------------------------

_keys = st.text(alphabet="ab01._", min_size=0, max_size=3)
_leaves = st.one_of(st.integers(-3, 3), st.none(), st.sampled_from(["s", 1.5, b"x"]))
_trees = st.recursive(
    _leaves,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.lists(kids, max_size=3).map(tuple),
                           st.dictionaries(_keys, kids, max_size=3),
                           st.tuples(kids, kids).map(lambda t: P(*t))),
    max_leaves=12)
_SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                     suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(_trees)
def test_random_trees_flatten_map_reduce(tree):
    same("tree_flatten", tree)
    same("tree_flatten", tree, prefix="p", destination={})
    same("tree_unflatten", upstream.tree_flatten(tree))
    same("tree_map", lambda x: (x,), tree)
    same("tree_map_with_path", lambda p, x: p, tree)
    same("tree_reduce", lambda acc, x: acc + [x], tree, [])


@_SETTINGS
@given(_trees, _trees)
def test_random_trees_merge(a, b):
    same("tree_merge", a, b)
    same("tree_merge", a, b, lambda x, y: (x, y))


@_SETTINGS
@given(_trees, _trees)
def test_random_trees_map_rest(a, b):
    # mismatched structures: the same results, or the same KeyError/IndexError/TypeError
    same("tree_map", lambda x, y: (x, y), a, b)
    same("tree_map_with_path", lambda p, x, y: (p, y), a, b, path="r")
    same("tree_map", lambda x, y: (x, y), a, b, is_leaf=lambda x: x == b)
    same("tree_flatten", a, is_leaf=lambda x: x == b)
    same("tree_reduce", lambda acc, x: acc + [x], a, [], lambda x: x == b)


@_SETTINGS
@given(st.lists(st.tuples(_keys, st.integers(0, 9)), max_size=5))
def test_random_unflatten(flat):
    same("tree_unflatten", flat)


class _StopIndexing(list):
    def __getitem__(self, i):
        raise StopIteration


def test_stop_iteration_from_rest():
    # upstream indexes the `rest` trees in a generator, which turns it into a RuntimeError
    for tree in [[1], {"a": 1}, P(1, 2)]:
        same("tree_map", lambda x, y: y, tree, _StopIndexing([1, 2]))
        same("tree_map_with_path", lambda p, x, y: y, tree, _StopIndexing([1, 2]))


# -- Modules and arrays: the same trees built with each framework ------------------------

def _picture(x):
    """Container types, key order and leaf values, with each framework's arrays, dtypes and
    Modules named alike."""
    if isinstance(x, (mlx_mx.array, em_mx.array)):
        return ("array", str(x.dtype).split(".")[-1], x.shape, x.tolist())
    if isinstance(x, (mlx_nn.Module, em_nn.Module)):
        return ("Module", type(x).__name__, [(k, _picture(v)) for k, v in x.items()])
    if isinstance(x, dict):
        return (type(x).__name__, [(k, _picture(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_picture(v) for v in x])
    return x


MODELS = {
    "linear": lambda mx, nn: nn.Linear(2, 3),
    "mlp": lambda mx, nn: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False)),
    "norms": lambda mx, nn: nn.Sequential(nn.LayerNorm(3), nn.BatchNorm(2), nn.Conv1d(2, 2, 3)),
    "arrays": lambda mx, nn: {"w": mx.ones((2, 2)), "b": [mx.array(1), (mx.array([1.5]), None)]},
}
MODULE_CALLS = {
    "flatten": lambda u, m: u.tree_flatten(m),
    "flatten params": lambda u, m: u.tree_flatten(getattr(m, "parameters", lambda: m)(),
                                                  destination={}),
    "flatten modules": lambda u, m: u.tree_flatten(m, is_leaf=lambda x: isinstance(
        x, (mlx_nn.Module, em_nn.Module))),
    "map": lambda u, m: u.tree_map(lambda x: x * 2 if hasattr(x, "shape") else ("leaf", x), m),
    "map rest": lambda u, m: u.tree_map(lambda x, y: y, m, m),
    "map_with_path": lambda u, m: u.tree_map_with_path(lambda p, x: p, m),
    "reduce": lambda u, m: u.tree_reduce(lambda a, x: a + [getattr(x, "shape", x)], m, []),
    "unflatten": lambda u, m: u.tree_unflatten(u.tree_flatten(m)),
    "merge": lambda u, m: u.tree_merge(u.tree_map(lambda x: None, m), m),
    "merge extra": lambda u, m: u.tree_merge({"extra": [1]}, m),
}


@pytest.mark.parametrize("call", MODULE_CALLS)
@pytest.mark.parametrize("model", MODELS)
def test_modules_and_arrays(model, call):
    mlx_mx.random.seed(3)
    em_mx.random.seed(3)
    want, werr = _call(MODULE_CALLS[call], (upstream, MODELS[model](mlx_mx, mlx_nn)), {})
    got, gerr = _call(MODULE_CALLS[call], (ours, MODELS[model](em_mx, em_nn)), {})
    assert repr(gerr) == repr(werr)
    assert _picture(got) == _picture(want)
