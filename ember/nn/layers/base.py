"""`Module`: a dict of parameters (arrays) and child modules (in dicts and lists).

Arrays, dicts, lists and tuples assigned as attributes live in the dict itself, so the
parameter tree of a model is the model; everything else is a plain attribute. Private keys
(leading underscore) are never parameters; frozen keys are parameters but not trainable.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable, List, Optional, Tuple, Union

import ember.core as mx
from ember.utils import tree_flatten, tree_unflatten

__all__ = ["Module"]

_TREE_VALUES = (mx.array, dict, list, tuple)
_array = mx.array


class Module(dict):
    """Base class of every layer: subclass it, call `super().__init__()`, assign parameters
    and submodules as attributes and define `__call__`."""

    __call__: Callable

    def __init__(self):
        self._no_grad = set()
        self._training = True

    @property
    def training(self):
        return self._training

    @property
    def state(self):
        """The module itself: writes to it change the module."""
        return self

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self):
        children = tree_flatten(self.children(), is_leaf=self.is_module)
        lines = [f"{type(self).__name__}({self._extra_repr()}"]
        lines += [textwrap.indent(f"({k}): {v!r}", "  ") for k, v in children]
        return "\n".join(lines) + ("\n)" if children else ")")

    # attributes: tree values go in the dict, anything else is a plain attribute
    def __getattr__(self, key: str):
        value = self.get(key)
        if value is not None:
            return value
        return super().__getattribute__(key)

    def __setattr__(self, key: str, val: Any):
        if isinstance(val, _TREE_VALUES):
            # a plain attribute of that name goes away so that the dict entry is seen;
            # a class attribute (method, property) cannot go, and raises as in MLX
            if key not in self and hasattr(self, key):
                delattr(self, key)
            self[key] = val
        else:
            super().__setattr__(key, val)
            self.pop(key, None)

    def __delattr__(self, name):
        if self.get(name) is not None:
            del self[name]
        else:
            super().__delattr__(name)

    # files
    def load_weights(self, file_or_weights: Union[str, List[Tuple[str, mx.array]]],
                     strict: bool = True) -> Module:
        """Update the parameters from a .npz or .safetensors file or a list of
        (dotted name, array) pairs; `strict` requires exactly the model's names and
        shapes."""
        weights = file_or_weights
        if isinstance(weights, str):
            weights = list(mx.load(weights).items())
        if strict:
            _check_weights(dict(weights), tree_flatten(self.parameters(), destination={}))
        if len(weights) != 0:
            self.update(tree_unflatten(weights), strict=False)
        return self

    def save_weights(self, file: str):
        """Save the parameters to `file` (.npz or .safetensors, by extension)."""
        params = tree_flatten(self.parameters(), destination={})
        if file.endswith(".npz"):
            mx.savez(file, **params)
        elif file.endswith(".safetensors"):
            mx.save_safetensors(file, params)
        else:
            raise ValueError(
                f"Unsupported file extension for {file}. Use '.npz' or '.safetensors'.")

    # filters
    @staticmethod
    def is_module(value):
        return isinstance(value, Module)

    @staticmethod
    def valid_child_filter(module, key, value):
        return isinstance(value, (dict, list))

    @staticmethod
    def valid_parameter_filter(module, key, value):
        return isinstance(value, (dict, list, mx.array)) and not key.startswith("_")

    @staticmethod
    def trainable_parameter_filter(module, key, value):
        return Module.valid_parameter_filter(module, key, value) and key not in module._no_grad

    def filter_and_map(self, filter_fn: Callable[[Module, str, Any], bool],
                       map_fn: Optional[Callable] = None,
                       is_leaf_fn: Optional[Callable[[Module, str, Any], bool]] = None):
        """The tree of this module's members that pass `filter_fn(module, key, value)`,
        with `map_fn` applied to the leaves (`is_leaf_fn` decides what a leaf is: by
        default anything that is not a module, dict or list)."""
        map_fn = map_fn or (lambda x: x)
        is_leaf_fn = is_leaf_fn or (lambda m, k, v: not isinstance(v, (Module, dict, list)))
        return {k: _unwrap(self, k, v, filter_fn, map_fn, is_leaf_fn)
                for k, v in self.items() if filter_fn(self, k, v)}

    def parameters(self):
        """All parameters (arrays), as a tree of dicts and lists."""
        if _default_filters(self):
            try:
                return _parameters(self, False)
            except TypeError:  # a key that is not a string: as the filter fails on it
                pass
        return self.filter_and_map(self.valid_parameter_filter)

    def trainable_parameters(self):
        """The parameters that are not frozen."""
        if _default_filters(self):
            try:
                return _parameters(self, True)
            # a key that is not a string, or a module without `_no_grad` (no
            # `Module.__init__`): the filter fails on them, or not if it never gets there
            except (TypeError, AttributeError):
                pass
        return self.filter_and_map(self.trainable_parameter_filter)

    def children(self):
        """The direct submodules, as a tree."""
        return self.filter_and_map(self.valid_child_filter,
                                   is_leaf_fn=lambda m, k, v: isinstance(v, Module))

    def leaf_modules(self):
        """The submodules that have no submodules of their own."""
        def is_leaf_module(m, k, v):
            return isinstance(v, Module) and not tree_flatten(v.children())
        return self.filter_and_map(self.valid_child_filter, is_leaf_fn=is_leaf_module)

    # updates
    def update(self, parameters: dict, strict: bool = True) -> Module:
        """Replace parameters with those in the (partial) tree `parameters`; `strict`
        requires every given name to exist and to replace an array with an array."""
        _update(self, parameters, strict, False)
        return self

    def update_modules(self, modules: dict, strict: bool = True) -> Module:
        """Replace submodules with those in the (partial) tree `modules`."""
        _update(self, modules, strict, True)
        return self

    def apply(self, map_fn: Callable[[mx.array], mx.array],
              filter_fn: Optional[Callable[[Module, str, Any], bool]] = None) -> Module:
        """Map the parameters (those passing `filter_fn`) through `map_fn`, in place."""
        self.update(self.filter_and_map(filter_fn or Module.valid_parameter_filter, map_fn))
        return self

    def apply_to_modules(self, apply_fn: Callable[[str, Module], Any]) -> Module:
        """Call `apply_fn(dotted path, module)` on this module and every submodule."""
        stack = [("", self)]
        while stack:
            prefix, mod = stack.pop()
            apply_fn(prefix, mod)
            stack.extend(tree_flatten(mod.children(), prefix="." + prefix if prefix else "",
                                      is_leaf=self.is_module))
        return self

    def modules(self):
        """This module and all its submodules."""
        out = []
        self.apply_to_modules(lambda k, m: out.append(m))
        return out

    def named_modules(self):
        """(dotted path, module) for this module and all its submodules."""
        out = []
        self.apply_to_modules(lambda k, m: out.append((k, m)))
        return out

    # freezing
    def _validate_keys(self, keys, strict):
        keys = keys if isinstance(keys, list) else [keys]
        if strict:
            for k in keys:
                if k not in self:
                    raise KeyError(f"Module doesn't contain member {k}.")
        return keys

    def _validate_keys_recursive(self, keys):
        keys = keys if isinstance(keys, list) else [keys]
        modules = self.modules()
        for k in keys:
            if not any(k in m for m in modules):
                raise KeyError(f"Module doesn't contain member {k}.")

    def _freeze_walk(self, impl, recurse, keys, strict):
        if recurse:
            if strict and keys is not None:
                self._validate_keys_recursive(keys)
                strict = False
            self.apply_to_modules(lambda _, m: impl(m, strict))
        else:
            impl(self, strict)
        return self

    def freeze(self, *, recurse: bool = True, keys: Optional[Union[str, List[str]]] = None,
               strict: bool = False) -> Module:
        """Exclude parameters (all, or those named `keys`) from the trainable ones."""
        def impl(m, strict):
            local = keys
            if local is None:
                local = [k for k, _ in tree_flatten(m.filter_and_map(
                    lambda m, k, v: not isinstance(v, Module)
                    and m.valid_parameter_filter(m, k, v)))]
            m._no_grad.update(m._validate_keys(local, strict))
        return self._freeze_walk(impl, recurse, keys, strict)

    def unfreeze(self, *, recurse: bool = True,
                 keys: Optional[Union[str, List[str]]] = None,
                 strict: bool = False) -> Module:
        """Make parameters (all, or those named `keys`) trainable again."""
        def impl(m, strict):
            if keys is None:
                m._no_grad.clear()
            else:
                m._no_grad.difference_update(m._validate_keys(keys, strict))
        return self._freeze_walk(impl, recurse, keys, strict)

    # modes and dtypes
    def _set_training_mode(self, mode: bool) -> None:
        self._training = mode

    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm statistics updated) everywhere."""
        self.apply_to_modules(lambda _, m: m._set_training_mode(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def set_dtype(self, dtype: mx.Dtype,
                  predicate: Optional[Callable[[mx.Dtype], bool]] = (
                      lambda x: mx.issubdtype(x, mx.floating))):
        """Cast the parameters whose dtype passes `predicate` (floating ones by default)."""
        if predicate is None:
            def predicate(_):
                return True
        self.apply(lambda x: x.astype(dtype) if predicate(x.dtype) else x)


def _check_weights(new, current):
    if extras := new.keys() - current.keys():
        raise ValueError(f"Received {len(extras)} parameters not in model: \n"
                         + ",\n".join(sorted(extras)) + ".")
    if missing := current.keys() - new.keys():
        raise ValueError(f"Missing {len(missing)} parameters: \n"
                         + ",\n".join(sorted(missing)) + ".")
    for k, v in current.items():
        v_new = new[k]
        if not isinstance(v_new, mx.array):
            raise ValueError(f"Expected mx.array but received {type(v_new)} for parameter {k}")
        if v_new.shape != v.shape:
            raise ValueError(f"Expected shape {v.shape} but received "
                             f"shape {v_new.shape} for parameter {k}")


def _update(dst, tree, strict, modules):
    """Walk `tree` alongside `dst`, storing its values where `dst` holds arrays (its
    modules where it holds modules, with `modules`); `strict` requires every name to exist
    and every leaf to be replaced by one of its kind."""
    named = isinstance(tree, dict)
    if not named and not isinstance(tree, list):
        if strict:
            raise ValueError(f"Received invalid type: {type(tree).__name__}.")
        return
    n = len(dst) if tree and not named else 0  # (len only of what is indexed)
    for k, new in tree.items() if named else enumerate(tree):
        if named and k not in dst:
            if strict:
                what = "sub-module" if modules else "parameter"
                raise ValueError(f'Module does not have {what} named "{k}".')
            continue
        if not named and k >= n:
            if strict:
                raise ValueError(f"List index {k} is out of bounds for "
                                 f"destination of length {n}.")
            continue
        current = dst[k]
        if modules:
            if not _set_module(dst, k, current, new, strict):
                _update(current, new, strict, True)
        elif isinstance(current, _array):
            if strict and not isinstance(new, _array):
                raise ValueError(f"Received invalid type: {type(new).__name__}.")
            dst[k] = new
        else:
            _update(current, new, strict, False)


def _set_module(dst, k, current, new, strict):
    """Store `new` at dst[k] when a module replaces a module; False means recurse."""
    if isinstance(current, Module) and isinstance(new, Module):
        dst[k] = new
        return True
    if isinstance(current, (dict, list)):
        return False
    if strict and new != {}:
        raise ValueError(f"Received invalid type: {type(new).__name__}.")
    return True


def _default_filters(module):
    # looked up on the instance: a subclass or the module itself may override them
    return (module.valid_parameter_filter is Module.valid_parameter_filter
            and module.trainable_parameter_filter is Module.trainable_parameter_filter
            and type(module).filter_and_map is Module.filter_and_map)


def _parameters(module, trainable):
    """`filter_and_map` with the default (trainable) parameter filter, walked without a
    call per filter, leaf test and map (a train step asks for the parameters more than
    once). As there, the top module's filter applies all the way down. Keys are compared
    rather than asked `startswith("_")` (a method call per key): a key that is not a
    string raises TypeError, for the caller to redo the walk through the filter."""
    skip = module._no_grad if trainable else ()
    out = {}
    for k, v in module.items():
        if isinstance(v, _array):
            if not "_" <= k < "`" and k not in skip:
                out[k] = v
        elif isinstance(v, Module):
            if not "_" <= k < "`" and k not in skip:
                out[k] = _parameters(v, trainable)
        elif isinstance(v, (dict, list)) and not "_" <= k < "`" and k not in skip:
            out[k] = _entries(v, k, trainable, skip)
    return out


def _entries(value, path, trainable, skip):
    # a dict or list of a module: the filter sees its entries under their dotted path in
    # that module (never private, as the path starts with a public key) and refused
    # entries stay as empty dicts; the paths are only built when frozen names may match
    if isinstance(value, dict):
        return {k: _entry(v, f"{path}.{k}" if skip else path, trainable, skip)
                for k, v in value.items()}
    return [_entry(v, f"{path}.{i}" if skip else path, trainable, skip)
            for i, v in enumerate(value)]


def _entry(v, path, trainable, skip):
    if isinstance(v, _array):
        return {} if skip and path in skip else v
    if not isinstance(v, (dict, list)) or skip and path in skip:
        return {}
    if isinstance(v, Module):
        return _parameters(v, trainable)
    return _entries(v, path, trainable, skip)


def _unwrap(model, key, value, filter_fn, map_fn, is_leaf_fn):
    if is_leaf_fn(model, key, value):
        return map_fn(value)
    if isinstance(value, Module):
        return {k: _unwrap(value, k, v, filter_fn, map_fn, is_leaf_fn)
                for k, v in value.items() if filter_fn(value, k, v)}
    if isinstance(value, dict):
        return {k: (_unwrap(model, f"{key}.{k}", v, filter_fn, map_fn, is_leaf_fn)
                    if filter_fn(model, f"{key}.{k}", v) else {})
                for k, v in value.items()}
    if isinstance(value, list):
        return [(_unwrap(model, f"{key}.{i}", v, filter_fn, map_fn, is_leaf_fn)
                 if filter_fn(model, f"{key}.{i}", v) else {})
                for i, v in enumerate(value)]
    raise RuntimeError("Unexpected leaf found while traversing the module")
