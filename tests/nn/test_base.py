"""Module (ember/nn/layers/base.py) against upstream mlx.nn.Module.

Each test runs the same code on both frameworks through `both(fn)`, where `fn(core, lib)`
gets (mlx.core, mlx.nn) or (ember.core, ember.nn); results are compared after turning
arrays into (shape, dtype, values) and modules into their class names, and exceptions
by type and message.
"""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten
from tests.helpers import np_of
from tests.nn.parity import assert_tree_same, result_tree, to_ember

FRAMEWORKS = ((mlx, mnn), (mx, nn))


def _norm(x):
    return result_tree(x, as_list=True)


def _run(fn, core, lib):
    core.random.seed(0)  # (the same initial weights in both, whatever ran before)
    try:
        return "ok", _norm(fn(core, lib))
    except Exception as e:  # the exception is the result being compared
        return "raised", type(e).__name__, str(e)


def both(fn, expect=None):
    """fn's result (or exception) on upstream equals the one on Ember."""
    up, ours = (_run(fn, *f) for f in FRAMEWORKS)
    assert ours == up
    if expect is not None:
        assert up[0] == expect, up
    return up


def make(core, lib):
    """A model with every kind of member: submodules in attributes, lists and dicts,
    arrays at each level, an int array, private and non-tree attributes, a tuple."""
    core.random.seed(0)

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.Linear(3, 4)
            self.blocks = [lib.Linear(4, 4), {"a": core.zeros((2,)),
                                             "b": lib.Linear(4, 2, bias=False)}]
            self.scale = core.ones((1,))
            self.ids = core.array([1, 2], core.int32)
            self.cfg = {"_hidden": core.zeros((1,)), "shown": core.full((2,), 3.0)}
            self._private = core.zeros((3,))
            self.name = "block"
            self.t = (core.zeros((1,)),)
            self.seq = lib.Sequential(lib.Linear(2, 2), lib.Sequential(lib.Linear(2, 1)))

        def __call__(self, x):
            x = self.blocks[0](self.lin(x))
            x = self.blocks[1]["b"](x) * self.scale + self.blocks[1]["a"]
            return self.seq(x) * self.cfg["shown"][0]

    return Block()


def _keys(tree):
    return [k for k, _ in tree_flatten(tree)]


# -- trees ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["parameters", "trainable_parameters", "children",
                                    "leaf_modules", "modules", "named_modules"])
def test_tree_methods(method):
    both(lambda c, lib: getattr(make(c, lib), method)(), "ok")


def test_module_in_tuple_and_empty_containers():
    def fn(c, lib):
        m = lib.Module()
        m.pair = (lib.Linear(1, 1), c.zeros((1,)))
        m.empty_list, m.empty_dict = [], {}
        m.nested = [[c.ones((1,))], {"x": [lib.Linear(1, 2)]}]
        return (m.parameters(), m.children(), m.leaf_modules(),
                [k for k, _ in m.named_modules()])
    both(fn, "ok")


def test_filter_and_map():
    def fn(c, lib):
        m = make(c, lib)
        one_d = m.filter_and_map(lambda mod, k, v: isinstance(v, c.array) and v.ndim == 1,
                                 map_fn=lambda v: v.shape)
        lists = m.filter_and_map(lib.Module.valid_parameter_filter,
                                 is_leaf_fn=lambda mod, k, v: isinstance(v, (list, c.array)))
        keys_seen = []
        m.filter_and_map(lambda mod, k, v: keys_seen.append(k)
                         or lib.Module.valid_parameter_filter(mod, k, v))
        return one_d, lists, keys_seen
    both(fn, "ok")


def test_filter_and_map_unexpected_leaf():
    def fn(c, lib):
        m = lib.Module()
        m.d = {"x": c.zeros((1,)), "s": "text"}
        return m.filter_and_map(lambda mod, k, v: True, is_leaf_fn=lambda mod, k, v: False)
    both(fn, "raised")


def test_static_filters():
    def fn(c, lib):
        M = lib.Module
        m = make(c, lib)
        m.freeze(keys="scale", recurse=False)
        a = c.zeros((1,))
        return [M.is_module(m), M.is_module({}), M.valid_child_filter(m, "k", []),
                M.valid_child_filter(m, "k", a), M.valid_parameter_filter(m, "_k", a),
                M.valid_parameter_filter(m, "k", 3), M.valid_parameter_filter(m, "k", {}),
                M.trainable_parameter_filter(m, "scale", a),
                M.trainable_parameter_filter(m, "lin", m.lin)]
    both(fn, "ok")


# -- update --------------------------------------------------------------------------


def test_update_partial():
    def fn(c, lib):
        m = make(c, lib)
        out = m.update({"lin": {"bias": c.full((4,), 7.0)},
                        "blocks": [{}, {"a": c.ones((2,))}], "seq": {"layers": [{}]}})
        assert out is m
        return m.parameters()
    both(fn, "ok")


def test_update_replaces_arrays_by_any_array():
    # no shape check in update: the new array just replaces the old one
    def fn(c, lib):
        m = make(c, lib)
        m.update({"scale": c.zeros((5, 5), c.float16)})
        return m.scale
    both(fn, "ok")


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", [
    "missing_key", "non_array", "list_too_long", "top_not_dict", "list_for_dict",
    "dict_for_list", "nested_missing", "int_for_module",
])
def test_update_bad(case, strict):
    def fn(c, lib):
        m = make(c, lib)
        new = {
            "missing_key": lambda: {"nope": c.zeros((1,))},
            "non_array": lambda: {"scale": 3},
            "list_too_long": lambda: {"blocks": [{}, {}, {}]},
            "top_not_dict": lambda: 5,
            "list_for_dict": lambda: {"lin": [c.zeros((1,))]},
            "dict_for_list": lambda: {"blocks": {"0": {}}},
            "nested_missing": lambda: {"blocks": [{"weight2": c.zeros((1,))}]},
            "int_for_module": lambda: {"lin": 3},
        }[case]()
        m.update(new, strict=strict)
        return m.parameters()
    both(fn)


def test_update_modules():
    def fn(c, lib):
        m = make(c, lib)
        c.random.seed(1)
        out = m.update_modules({"lin": lib.Linear(3, 5), "blocks": [{}, {"b": lib.Identity()}],
                                "seq": {"layers": [lib.Linear(2, 3)]}})
        assert out is m
        return m.parameters(), [k for k, _ in m.named_modules()], repr(m)
    both(fn, "ok")


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", ["missing", "array_slot", "list_too_long", "top_not_dict",
                                  "empty_for_array", "non_module"])
def test_update_modules_bad(case, strict):
    def fn(c, lib):
        m = make(c, lib)
        new = {
            "missing": lambda: {"nope": lib.Identity()},
            "array_slot": lambda: {"scale": lib.Identity()},
            "list_too_long": lambda: {"blocks": [{}, {}, lib.Identity()]},
            "top_not_dict": lambda: [lib.Identity()],
            "empty_for_array": lambda: {"scale": {}},
            "non_module": lambda: {"lin": 3},
        }[case]()
        m.update_modules(new, strict=strict)
        return [k for k, _ in m.named_modules()], m.parameters()
    both(fn)


def test_apply():
    def fn(c, lib):
        m = make(c, lib)
        assert m.apply(lambda x: x * 2) is m
        m.apply(lambda x: x + 1,
                filter_fn=lambda mod, k, v: k in ("bias", "seq", "layers") or
                isinstance(v, list))
        return m.parameters()
    both(fn, "ok")


def test_apply_to_modules():
    def fn(c, lib):
        m = make(c, lib)
        seen = []
        assert m.apply_to_modules(lambda k, mod: seen.append((k, type(mod).__name__))) is m
        return seen
    both(fn, "ok")


def test_modules_are_the_same_objects():
    m = make(mx, nn)
    mods = m.modules()
    assert mods[0] is m and any(x is m.blocks[1]["b"] for x in mods)
    assert [x for _, x in m.named_modules()] == mods


# -- freeze ----------------------------------------------------------------------------

FREEZE_STEPS = [
    ("freeze", {}),
    ("unfreeze", {"keys": "bias"}),
    ("unfreeze", {}),
    ("freeze", {"keys": ["weight", "scale"]}),
    ("freeze", {"keys": "weight"}),                     # idempotent
    ("unfreeze", {"keys": "weight", "recurse": False}),
    ("freeze", {"recurse": False}),
    ("unfreeze", {"keys": ["scale", "ids"], "strict": True}),
    ("freeze", {"keys": "cfg", "recurse": False, "strict": True}),
    ("unfreeze", {"recurse": False}),
    ("freeze", {"keys": "bias", "strict": True}),
]


def test_freeze_sequence():
    def fn(c, lib):
        m = make(c, lib)
        record = []
        for name, kwargs in FREEZE_STEPS:
            assert getattr(m, name)(**kwargs) is m
            record.append((_keys(m.trainable_parameters()),
                           [sorted(x._no_grad) for x in m.modules()]))
        return record
    both(fn, "ok")


@pytest.mark.parametrize("name", ["freeze", "unfreeze"])
@pytest.mark.parametrize("kwargs", [
    {"keys": "nope", "strict": True},
    {"keys": ["weight", "nope"], "strict": True},
    {"keys": "weight", "strict": True, "recurse": False},    # only in submodules
    {"keys": "scale", "strict": True, "recurse": False},
    {"keys": "nope"},                                        # not strict: ignored
    {"keys": "nope", "recurse": False},
])
def test_freeze_strict(name, kwargs):
    def fn(c, lib):
        m = make(c, lib)
        getattr(m, name)(**kwargs)
        return _keys(m.trainable_parameters())
    both(fn)


def test_freeze_non_parameter_key():
    # keys name members, not only parameters: a frozen submodule name hides its subtree
    def fn(c, lib):
        m = make(c, lib)
        m.freeze(keys="blocks", recurse=False)
        m.freeze(keys=["seq"], recurse=False)
        return _keys(m.trainable_parameters()), _keys(m.parameters())
    both(fn, "ok")


def test_value_and_grad_skips_frozen():
    def fn(c, lib):
        m = make(c, lib)
        m.freeze(keys=["bias", "ids"])
        m.blocks[1]["b"].freeze()
        x = c.array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
        val, grads = lib.value_and_grad(m, lambda a: m(a).sum())(x)
        return val, grads
    up, ours = (fn(*f) for f in FRAMEWORKS)
    assert _keys(ours[1]) == _keys(up[1])
    assert_tree_same(ours, up)


# -- modes and dtypes --------------------------------------------------------------------


def test_train_eval():
    def fn(c, lib):
        m = make(c, lib)
        rec = [m.training]
        assert m.eval() is m
        rec.append([x.training for x in m.modules()])
        assert m.seq.train() is m.seq
        rec.append([x.training for x in m.modules()])
        m.train(False)
        m.blocks[0].train(mode=True)
        rec.append([x.training for x in m.modules()])
        m.train()
        rec.append([x.training for x in m.modules()])
        return rec
    both(fn, "ok")


def test_training_mode_hook():
    # subclasses see mode changes through _set_training_mode
    def fn(c, lib):
        class Counting(lib.Module):
            def __init__(self):
                super().__init__()
                self.calls = 0

            def _set_training_mode(self, mode):
                super()._set_training_mode(mode)
                self.calls += 1

        m = lib.Sequential(Counting(), lib.Linear(1, 1))
        m.eval()
        m.train()
        return m.layers[0].calls, m.layers[0].training
    both(fn, "ok")


@pytest.mark.parametrize("case", ["default", "none", "custom", "bfloat16", "float32"])
def test_set_dtype(case):
    def fn(c, lib):
        m = make(c, lib)
        if case == "default":
            r = m.set_dtype(c.float16)
        elif case == "none":
            r = m.set_dtype(c.float16, predicate=None)
        elif case == "custom":
            r = m.set_dtype(c.int16, lambda d: d == c.int32)
        elif case == "bfloat16":
            r = m.set_dtype(c.bfloat16)
        else:
            m.set_dtype(c.float16)
            r = m.set_dtype(c.float32)
        return r, m.parameters(), m._private.dtype
    both(fn, "ok")


# -- attributes and state ----------------------------------------------------------------


def test_state_is_the_module():
    def fn(c, lib):
        m = make(c, lib)
        assert m.state is m
        m.state["scale"] = c.full((1,), 5.0)
        return m.scale, m.parameters()["scale"]
    both(fn, "ok")


ATTR_CASES = {
    "array_to_dict": "m.x = c.ones((2,)); r = ('x' in m, 'x' in m.__dict__, m.x)",
    "plain_to_attr": "m.x = 3; r = ('x' in m, m.x)",
    "plain_then_array": "m.x = 3; m.x = c.ones((1,)); r = ('x' in m, 'x' in m.__dict__, m.x)",
    "array_then_plain": "m.scale = 5; r = ('scale' in m, m.scale, _keys(m.parameters()))",
    "none_value": "m.scale = None; r = ('scale' in m, m.scale)",
    "tuple_in_dict": "m.t2 = (1, 2); r = ('t2' in m, m.t2, _keys(m.parameters()))",
    "list_of_ints": "m.l = [1, 2]; r = m.parameters()['l']",
    "missing_attr": "r = m.nothing",
    "dict_none_entry": "m['z'] = None; r = m.z",
    "class_attr": "m.cls_attr = c.ones((1,))",
    "method_name": "m.parameters = c.ones((1,))",
    "property_name": "m.training = [1]",
    "plain_over_method": "m.children = 3; r = m.children",
    "del_dict": "del m.scale; r = ('scale' in m, _keys(m.parameters()))",
    "del_plain": "del m.name; r = m.name",
    "del_missing": "del m.nothing",
    "del_private_array": "del m._private; r = '_private' in m",
    "getattr_falsy": "m.e = []; r = m.e",
    "item_access": "r = (m['lin'] is m.lin, m['scale'])",
    "name_kept": "r = (m.name, 'name' in m)",
}


@pytest.mark.parametrize("case", sorted(ATTR_CASES))
def test_attribute_semantics(case):
    def fn(c, lib):
        class WithClassAttr(type(make(c, lib))):
            cls_attr = None

        m = WithClassAttr()
        env = {"m": m, "c": c, "_keys": _keys, "r": None}
        exec(ATTR_CASES[case], env)
        return env["r"]
    both(fn)


def test_repr():
    def fn(c, lib):
        class Custom(lib.Module):
            def __init__(self):
                super().__init__()
                self.inner = [lib.Linear(2, 2), {"x": lib.Identity()}]
                self.w = c.zeros((1,))

            def _extra_repr(self):
                return "custom=1"

        m = make(c, lib)
        m.extra = Custom()
        return repr(m), repr(lib.Module()), str(Custom())
    both(fn, "ok")


# -- weights files -------------------------------------------------------------------------


def _weights(c, m, scale=1.0, drop=(), add=(), reshape=(), non_array=()):
    out = []
    for k, v in tree_flatten(m.parameters()):
        if k in drop:
            continue
        v = v * scale if c.issubdtype(v.dtype, c.floating) else v
        if k in reshape:
            v = c.zeros((7,), v.dtype)
        if k in non_array:
            v = 3.0
        out.append((k, v))
    return out + [(k, c.zeros((1,))) for k in add]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", [
    "exact", "extra", "missing", "wrong_shape", "non_array", "extra_and_missing", "empty",
])
def test_load_weights_list(case, strict):
    def fn(c, lib):
        m = make(c, lib)
        kw = {"exact": {}, "extra": {"add": ["lin.nope", "zzz"]},
              "missing": {"drop": ["lin.bias", "scale"]},
              "wrong_shape": {"reshape": ["blocks.0.weight"]},
              "non_array": {"non_array": ["scale"]},
              "extra_and_missing": {"add": ["a.b"], "drop": ["scale"]},
              "empty": {"drop": _keys(m.parameters())}}[case]
        assert m.load_weights(_weights(c, m, 3.0, **kw), strict=strict) is m
        return m.parameters()
    both(fn)


@pytest.mark.parametrize("ext", [".npz", ".safetensors"])
def test_save_and_load_weights_files(tmp_path, ext):
    def fn(c, lib):
        m = make(c, lib)
        path = str(tmp_path / f"{c.__name__}{ext}")
        m.update({"scale": c.full((1,), 4.0)})
        m.save_weights(path)
        fresh = make(c, lib)
        assert fresh.load_weights(path) is fresh
        return fresh.parameters(), sorted(c.load(path))
    both(fn, "ok")


@pytest.mark.parametrize("ext", [".npz", ".safetensors"])
def test_load_weights_file_strict_errors(tmp_path, ext):
    def fn(c, lib):
        m = make(c, lib)
        path = str(tmp_path / f"{c.__name__}{ext}")
        small = lib.Linear(3, 4)
        small.save_weights(path)
        return m.load_weights(path)
    both(fn, "raised")

    def fn_loose(c, lib):
        m = make(c, lib)
        path = str(tmp_path / f"{c.__name__}{ext}")
        m.lin.save_weights(path)
        m.blocks[0].load_weights(path, strict=False)
        return m.blocks[0].parameters()
    both(fn_loose, "ok")


@pytest.mark.parametrize("name", ["w.txt", "w", "w.npy", "w.gguf"])
def test_save_weights_bad_extension(tmp_path, name):
    both(lambda c, lib: make(c, lib).save_weights(str(tmp_path / name)), "raised")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("ext", [".npz", ".safetensors"])
@pytest.mark.parametrize("direction", ["ember_to_mlx", "mlx_to_ember"])
def test_weights_cross_framework(tmp_path, ext, dtype, direction):
    if ext == ".npz" and dtype == "bfloat16":
        pytest.skip("npz has no bfloat16")
    src_fw, dst_fw = FRAMEWORKS[::-1] if direction == "ember_to_mlx" else FRAMEWORKS
    src = make(*src_fw)
    src.apply(lambda x: x * 5 + 1)
    src.set_dtype(getattr(src_fw[0], dtype))
    path = str(tmp_path / f"w{ext}")
    src.save_weights(path)
    dst = make(*dst_fw)
    dst.set_dtype(getattr(dst_fw[0], dtype))
    dst.load_weights(path)
    e, m = (src, dst) if direction == "ember_to_mlx" else (dst, src)
    assert_tree_same(e.parameters(), m.parameters(), 0)


def test_loaded_weights_are_used():
    m = make(mx, nn)
    up = make(mlx, mnn)
    up.apply(lambda x: x - 0.5)
    m.load_weights([(k, to_ember(v)) for k, v in tree_flatten(up.parameters())])
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(np_of(m(mx.array(x))), np_of(up(mlx.array(x))), rtol=1e-5)


def _shape_of(tree):
    """The tree's structure with each array leaf replaced by its identity."""
    if isinstance(tree, dict):
        return ("d", [(k, _shape_of(v)) for k, v in tree.items()])
    if isinstance(tree, list):
        return ("l", [_shape_of(v) for v in tree])
    return id(tree)


def _nested_module(lib, core):
    class Inner(lib.Module):
        def __init__(self):
            super().__init__()
            self.w = core.ones((2,))
            self.cfg = {"a": core.zeros((1,)), "n": 3, "_hidden": core.ones((1,)),
                        "deep": [core.ones((1,)), "text", {"x": core.ones((3,))}]}
            self._private = core.ones((1,))
            self.mods = [lib.Linear(2, 2), {"lin": lib.Linear(1, 1, bias=False)}]

    class Outer(lib.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()
            self.blocks = [Inner(), Inner()]
            self.b = core.zeros((4,))
            self.scale = 2.0
    return Outer()


@pytest.mark.parametrize("freeze", [None, ["b"], ["cfg.a", "w"], ["cfg.deep"], "inner"])
def test_parameter_walk_matches_filter_and_map_and_upstream(freeze):
    """The direct walk behind parameters()/trainable_parameters() gives what the generic
    filter_and_map gives, and the names upstream gives, including frozen dotted keys
    inside containers."""
    from mlx.utils import tree_flatten as mlx_flatten
    e, m = _nested_module(nn, mx), _nested_module(mnn, mlx)
    for mod in (e, m):
        if freeze == "inner":
            mod.inner.freeze()
        elif freeze:
            mod.inner.freeze(keys=freeze, strict=False)
            mod.blocks[1].freeze(keys=freeze, strict=False)
    for fast, slow in ((e.parameters(), e.filter_and_map(e.valid_parameter_filter)),
                       (e.trainable_parameters(),
                        e.filter_and_map(e.trainable_parameter_filter))):
        assert _shape_of(fast) == _shape_of(slow)
    assert [k for k, _ in tree_flatten(e.trainable_parameters())] == \
        [k for k, _ in mlx_flatten(m.trainable_parameters())]
    assert [k for k, _ in tree_flatten(e.parameters())] == \
        [k for k, _ in mlx_flatten(m.parameters())]


@pytest.mark.parametrize("freeze", [None, ["b"], ["cfg.a", "w"], ["cfg.deep", "mods.1"],
                                    ["mods.0", "cfg.deep.2"], "inner"])
def test_parameter_trees_with_frozen_dotted_keys(freeze):
    # the whole trees, empty dicts of refused container entries included
    def fn(c, lib):
        m = _nested_module(lib, c)
        if freeze == "inner":
            m.inner.freeze()
        elif freeze:
            m.freeze(keys=freeze, strict=False, recurse=False)
            m.inner.freeze(keys=freeze, strict=False)
            m.blocks[1].freeze(keys=freeze, strict=False)
        return m.parameters(), m.trainable_parameters()
    both(fn, "ok")


@pytest.mark.parametrize("case", ["int_key_array", "int_key_tuple", "bare", "bare_array",
                                  "bare_tuple"])
def test_parameters_of_unusual_modules(case):
    # the filters fail on a key that is not a string, and on a module without `_no_grad`
    # (no Module.__init__), but only on the entries they are asked about
    def fn(c, lib):
        class Bare(lib.Module):
            def __init__(self):
                pass

        m = lib.Linear(1, 1) if case.startswith("int") else Bare()
        if case == "int_key_array":
            m[0] = c.zeros((1,))
        elif case == "int_key_tuple":
            m[0] = (c.zeros((1,)),)
        elif case == "bare_array":
            m.w = c.zeros((1,))
        elif case == "bare_tuple":
            m.t = (c.zeros((1,)),)
        out = []
        for method in ("parameters", "trainable_parameters"):
            try:
                out.append(getattr(m, method)())
            except Exception as e:  # the exception is the result being compared
                out.append((type(e).__name__, str(e)))
        return out
    both(fn, "ok")


def test_overridden_filters():
    # the top module's filters (of its class or of the instance) apply all the way down;
    # an overridden filter_and_map is what parameters() calls
    def fn(c, lib):
        class Matrices(lib.Module):
            def __init__(self):
                super().__init__()
                self.lin = lib.Linear(2, 3)
                self.parts = [lib.Linear(3, 1), c.zeros((2,)), {"m": c.zeros((2, 2))}]

            @staticmethod
            def valid_parameter_filter(module, key, value):
                return (isinstance(value, (dict, list))
                        or isinstance(value, c.array) and value.ndim == 2)

            @staticmethod
            def trainable_parameter_filter(module, key, value):
                return key != "lin" and Matrices.valid_parameter_filter(module, key, value)

        class Named(lib.Linear):
            def filter_and_map(self, filter_fn, map_fn=None, is_leaf_fn=None):
                return {"keys": sorted(super().filter_and_map(filter_fn, map_fn, is_leaf_fn))}

        top = Matrices()
        outer = lib.Module()
        outer.child = Matrices()
        patched = lib.Linear(2, 2)
        patched.valid_parameter_filter = lambda module, key, value: key == "bias"
        patched.trainable_parameter_filter = lambda module, key, value: key == "weight"
        return [(m.parameters(), m.trainable_parameters())
                for m in (top, outer, patched, Named(1, 1))]
    both(fn, "ok")


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", ["arrays", "non_array", "too_long", "dict_in_list",
                                  "dict_for_list", "array_for_list"])
def test_update_list_of_arrays(case, strict):
    def fn(c, lib):
        m = lib.Module()
        m.arrs = [c.zeros((1,)), c.ones((2,)), {"x": c.ones((1,))}]
        new = {
            "arrays": lambda: [c.full((3,), 2.0), c.zeros((1,))],
            "non_array": lambda: [c.zeros((1,)), 3],
            "too_long": lambda: [{}, c.zeros((1,)), {}, c.zeros((1,))],
            "dict_in_list": lambda: [c.zeros((1,)), c.zeros((1,)), {"x": 1, "y": 2}],
            "dict_for_list": lambda: {"0": c.zeros((1,))},
            "array_for_list": lambda: c.zeros((1,)),
        }[case]()
        m.update({"arrs": new}, strict=strict)
        return m.parameters()
    both(fn)
