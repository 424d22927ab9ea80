"""Pytree utilities, as in mlx.utils.

A tree is nested lists, tuples (namedtuples included) and dicts; anything else is a leaf.
Flat keys join the path with dots ("layers.0.weight").
"""

from collections import defaultdict
from itertools import zip_longest
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

_TREES = (list, tuple, dict)


def tree_map(fn: Callable, tree: Any, *rest: Any, is_leaf: Optional[Callable] = None) -> Any:
    """Apply `fn` to the leaves of `tree` (and the matching nodes of each tree in `rest`,
    which must have `tree`'s structure at least down to its leaves); returns the tree of
    the results."""
    if is_leaf is not None and is_leaf(tree) or not isinstance(tree, _TREES):
        return fn(tree, *rest)
    # without `rest` (the usual case), no generator indexing the rest trees per child
    if isinstance(tree, dict):
        if not rest:
            return {k: tree_map(fn, child, is_leaf=is_leaf) for k, child in tree.items()}
        return {k: tree_map(fn, child, *(r[k] for r in rest), is_leaf=is_leaf)
                for k, child in tree.items()}
    # built inline from a generator, as upstream: the same recursion depth per level, and
    # a StopIteration out of `fn` becomes a RuntimeError; namedtuples take fields positionally
    if not rest:
        seq = (tree_map(fn, child, is_leaf=is_leaf) for child in tree)
    else:
        seq = (tree_map(fn, child, *(r[i] for r in rest), is_leaf=is_leaf)
               for i, child in enumerate(tree))
    return type(tree)(*seq) if hasattr(tree, "_fields") else type(tree)(seq)


def tree_map_with_path(fn: Callable, tree: Any, *rest: Any, is_leaf: Optional[Callable] = None,
                       path: Optional[Any] = None) -> Any:
    """Like :func:`tree_map`, but `fn` receives the dotted path of each leaf first."""
    if is_leaf is not None and is_leaf(tree) or not isinstance(tree, _TREES):
        return fn(path, tree, *rest)
    # paths are built with format() (not str()) into new strings, as upstream
    prefix = f"{path}." if path else ""
    if isinstance(tree, dict):
        return {k: tree_map_with_path(fn, child, *(r[k] for r in rest), is_leaf=is_leaf,
                                      path=f"{prefix}{k}")
                for k, child in tree.items()}
    seq = (tree_map_with_path(fn, child, *(r[i] for r in rest), is_leaf=is_leaf,
                              path=f"{prefix}{i}")
           for i, child in enumerate(tree))
    return type(tree)(*seq) if hasattr(tree, "_fields") else type(tree)(seq)


def tree_flatten(
    tree: Any,
    prefix: str = "",
    is_leaf: Optional[Callable] = None,
    destination: Optional[Union[List[Tuple[str, Any]], Dict[str, Any]]] = None,
) -> Union[List[Tuple[str, Any]], Dict[str, Any]]:
    """The leaves of `tree` as (dotted key, leaf) pairs in depth-first order, appended to
    `destination` (a new list by default; a dict gets key -> leaf). The keys are
    `prefix` + "." + path, minus their first character."""
    if destination is None:
        destination = []
    elif not isinstance(destination, (list, dict)):
        raise ValueError("Destination should be either a list or a dictionary or None")
    if (is_leaf is None or not is_leaf(tree)) and isinstance(tree, _TREES):
        for k, child in tree.items() if isinstance(tree, dict) else enumerate(tree):
            tree_flatten(child, f"{prefix}.{k}", is_leaf, destination)
    # extend/update with one pair, as upstream: subclasses overriding them see each leaf
    elif isinstance(destination, list):
        destination.extend([(prefix[1:], tree)])
    else:
        destination.update([(prefix[1:], tree)])
    return destination


def tree_unflatten(tree: Union[List[Tuple[str, Any]], Dict[str, Any]]) -> Any:
    """Rebuild a tree from (dotted key, leaf) pairs (or a dict of them). A level whose keys
    all parse as distinct integers becomes a list (gaps hold empty dicts), any other level
    a dict."""
    # not copied into a list: a tree without len() (an iterator) is a TypeError upstream
    items = tree.items() if isinstance(tree, dict) else tree
    if len(items) == 1:
        key, value = next(iter(items))
        if key == "":
            return value
    children = defaultdict(list)
    for key, value in items:
        parts = key.split(".", 1)
        children[parts[0]].append((parts[1] if len(parts) == 2 else "", value))
    # a level named by letters is a dict: int() fails on its first key, but only after
    # the cost of raising
    if next(iter(children), "0")[:1].isalpha():
        indices = {}
    else:
        try:
            indices = dict(zip(map(int, children), children))
        except ValueError:
            indices = {}
    # "1" and "01" are one index but two keys: a dict then
    if len(indices) != len(children):
        return {k: tree_unflatten(v) for k, v in children.items()}
    out = []
    for i, k in sorted(indices.items()):
        if i > len(out):
            out.extend({} for _ in range(i - len(out)))
        out.append(tree_unflatten(children[k]))
    return out


def tree_reduce(fn, tree, initializer=None, is_leaf=None):
    """Fold `fn(accumulator, leaf)` over the leaves of `tree`; without an `initializer`
    the first leaf starts the accumulation."""
    if is_leaf is not None and is_leaf(tree) or not isinstance(tree, _TREES):
        return tree if initializer is None else fn(initializer, tree)
    acc = initializer
    for child in (tree.values() if isinstance(tree, dict) else tree):
        acc = tree_reduce(fn, child, acc, is_leaf)
    return acc


def tree_merge(tree_a, tree_b, merge_fn=None):
    """Merge two trees into one holding the values of both, like a deep dict.update.
    Empty containers and None count as absent subtrees; where both trees hold a value,
    `merge_fn(a, b)` decides (an error without one)."""
    # no helper call: the frames of upstream, so that deep trees fail at the same depth
    a_empty = isinstance(tree_a, _TREES) and len(tree_a) == 0
    b_empty = isinstance(tree_b, _TREES) and len(tree_b) == 0
    if a_empty and b_empty:
        if type(tree_a) is not type(tree_b):
            raise ValueError(f"Cannot merge {type(tree_a).__name__} with "
                             f"{type(tree_b).__name__}")
        # a new empty container of that type (an OrderedDict stays one)
        return type(tree_a)()
    if a_empty:
        tree_a = None
    elif b_empty:
        tree_b = None
    if tree_a is None and tree_b is not None:
        return tree_b
    if tree_a is not None and tree_b is None:
        return tree_a
    if isinstance(tree_a, (list, tuple)) and isinstance(tree_b, (list, tuple)):
        seq = (tree_merge(x, y, merge_fn) for x, y in zip_longest(tree_a, tree_b))
        return type(tree_a)(*seq) if hasattr(tree_a, "_fields") else type(tree_a)(seq)
    if isinstance(tree_a, dict) and isinstance(tree_b, dict):
        keys = set(tree_a.keys()) | set(tree_b.keys())
        return {k: tree_merge(tree_a.get(k), tree_b.get(k), merge_fn) for k in keys}
    if merge_fn is None:
        raise ValueError("Trees contain elements at the same locations but no merge function "
                         "was provided")
    return merge_fn(tree_a, tree_b)
