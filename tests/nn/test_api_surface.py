"""Every public name of upstream's mlx.nn, mlx.nn.init, mlx.nn.losses and mlx.optimizers
exists in Ember, and every function, class constructor and public method takes the same
parameters (names, kinds, defaults).

Public names are those a namespace defines itself (objects whose `__module__` lies in
the upstream package, its submodules, and type aliases such as `losses.Reduction`), not
what it merely imports (`math`, `mx`, `Optional`, `tree_map`...).
"""

import importlib
import inspect
import types
import typing

import mlx.nn
import mlx.nn.init
import mlx.nn.losses
import mlx.optimizers
import pytest

NAMESPACES = [  # (upstream module, Ember module name, package its own names come from)
    (mlx.nn, "ember.nn", "mlx.nn"),
    (mlx.nn.init, "ember.nn.init", "mlx.nn.init"),
    (mlx.nn.losses, "ember.nn.losses", "mlx.nn.losses"),
    (mlx.optimizers, "ember.optimizers", "mlx.optimizers"),
]
# builtin bases of upstream classes: their members are Python's, not MLX's API
_BUILTIN_BASES = (object, dict)


def _is_alias(obj):
    return type(obj).__module__ == "typing"


def _own_names(mod, pkg):
    out = []
    for name, obj in vars(mod).items():
        if name.startswith("_"):
            continue
        if isinstance(obj, types.ModuleType):
            if obj.__name__.startswith(pkg + ".") or obj.__name__ == pkg:
                out.append(name)
        elif _is_alias(obj):
            if name not in typing.__all__:
                out.append(name)
        elif (getattr(obj, "__module__", None) or "").startswith(pkg):
            out.append(name)
    return out


CASES = [(up, ours, name) for up, ours, pkg in NAMESPACES for name in _own_names(up, pkg)]


def _ember(modname):
    try:
        return importlib.import_module(modname)
    except ImportError as e:
        pytest.fail(f"{modname} cannot be imported: {e}")


def _default(d):
    if d is inspect.Parameter.empty:
        return "<none>"
    if callable(d) and not isinstance(d, type):
        # a function default (a lambda predicate, say) is equal by name, not identity
        return f"<callable {getattr(d, '__name__', type(d).__name__)}>"
    return repr(d)


def _params(fn):
    sig = inspect.signature(fn)
    return [(p.name, p.kind.name, _default(p.default)) for p in sig.parameters.values()]


def _assert_same_signature(ours, up, what):
    try:
        expected = _params(up)
    except (TypeError, ValueError):
        return  # upstream's own object has no signature to compare
    assert _params(ours) == expected, what


def _members(cls):
    """Public members that upstream's classes (not builtin bases) define."""
    names = {}
    for klass in reversed(cls.__mro__):
        if klass in _BUILTIN_BASES:
            continue
        for name in vars(klass):
            if not name.startswith("_"):
                names[name] = None
    return list(names)


def _check_class(ours, up, what):
    assert isinstance(ours, type), f"{what} is not a class"
    _assert_same_signature(ours.__init__, up.__init__, f"{what}.__init__")
    missing = []
    for name in _members(up):
        if not hasattr(ours, name):
            missing.append(name)
            continue
        u, o = inspect.getattr_static(up, name), inspect.getattr_static(ours, name)
        if isinstance(u, (property, staticmethod, classmethod)):
            assert type(o) is type(u), f"{what}.{name}: {type(o).__name__}"
        if isinstance(u, (staticmethod, classmethod)):
            u, o = u.__func__, o.__func__
        if callable(u) and not isinstance(u, type):
            _assert_same_signature(o, u, f"{what}.{name}")
    assert not missing, f"{what} lacks {missing}"


@pytest.mark.parametrize("up,ours_name,name", CASES,
                         ids=[f"{o}.{n}" for _, o, n in CASES])
def test_public_name(up, ours_name, name):
    ours_mod = _ember(ours_name)
    what = f"{ours_name}.{name}"
    assert hasattr(ours_mod, name), f"{what} is missing"
    u, o = getattr(up, name), getattr(ours_mod, name)
    if isinstance(u, types.ModuleType):
        assert isinstance(o, types.ModuleType), f"{what} is not a module"
    elif _is_alias(u):
        assert repr(o) == repr(u), what
    elif isinstance(u, type):
        _check_class(o, u, what)
    else:
        assert callable(o), f"{what} is not callable"
        _assert_same_signature(o, u, what)


def test_cases_cover_the_known_names():
    # the name filter must not drop the API itself
    names = {f"{o}.{n}" for _, o, n in CASES}
    for expected in ["ember.nn.Linear", "ember.nn.Module", "ember.nn.value_and_grad",
                     "ember.nn.gelu", "ember.nn.init.he_normal", "ember.nn.losses.Reduction",
                     "ember.nn.losses.cross_entropy", "ember.optimizers.AdamW",
                     "ember.optimizers.cosine_decay", "ember.nn.layers"]:
        assert expected in names
    for imported in ["ember.nn.init.mx", "ember.nn.losses.Optional", "ember.optimizers.tree_map",
                     "ember.optimizers.Module"]:
        assert imported not in names
