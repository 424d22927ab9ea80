"""ember.utils against upstream mlx.utils: signatures, results and exceptions on many trees."""

import inspect
from collections import OrderedDict, namedtuple

import mlx.utils as upstream
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember.utils as ours

NAMES = ["tree_flatten", "tree_unflatten", "tree_map", "tree_map_with_path", "tree_reduce",
         "tree_merge"]

P = namedtuple("P", "x y")
E = namedtuple("E", "")


class MyList(list):
    pass


def _same_value(a, b, path="tree"):
    """Equal values of the same types all the way down (dict order included)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(b, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in b:
            _same_value(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same_value(x, y, f"{path}.{i}")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _call(fn, args, kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as err:  # noqa: BLE001 - compared below
        return None, err


def same(name, *args, **kwargs):
    """ember.utils.<name> behaves as mlx.utils.<name> on these arguments."""
    want, werr = _call(getattr(upstream, name), args, kwargs)
    got, gerr = _call(getattr(ours, name), args, kwargs)
    if werr is not None:
        assert gerr is not None, f"{name}{args}: upstream raised {werr!r}, we returned {got!r}"
        assert type(gerr) is type(werr), f"{name}{args}: {gerr!r} vs upstream {werr!r}"
        if not isinstance(werr, RecursionError):  # the depth at which it gives up differs
            assert str(gerr) == str(werr)
        return
    assert gerr is None, f"{name}{args}: we raised {gerr!r}, upstream returned {want!r}"
    _same_value(got, want)


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


def test_tree_flatten_deep_tree():
    deep = 0
    for _ in range(5000):  # deeper than the recursion limit
        deep = [deep]
    flat = ours.tree_flatten(deep)
    assert len(flat) == 1 and flat[0][0] == ".".join(["0"] * 5000)


FLATS = [
    [], {}, [("", 1)], [("", 1), ("", 2)], [("a", 1), ("a", 2)], [("a.b", 1), ("a.b", 2)],
    [("a.0", 1), ("a.2", 2)], [("0", 1), ("1", 2)], [("10", 1), ("2", 2)],
    [("-1", 1)], [("-1", 1), ("0", 2)], [("3", 1), ("-1", 2)], [("-2", 1)],
    [(" 1", 1), ("1", 2)], [(" 1", 1)], [("1 ", 1)], [("0", 1), ("00", 2)],
    [("1", 1), ("+1", 2)], [("1", 1), ("1", 2)], [("1", 1), ("a", 2)], [("1_0", 1)],
    [("\u0663", 1)], [("1e3", 1)], [("0x1", 1)], [("True", 1)], [("1.5", 1)],
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
@given(st.lists(st.tuples(_keys, st.integers(0, 9)), max_size=5))
def test_random_unflatten(flat):
    same("tree_unflatten", flat)
