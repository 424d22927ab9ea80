"""Pytree utilities, as in mlx.utils.

A tree is nested lists, tuples (namedtuples included) and dicts; anything else is a leaf.
Flat keys join the path with dots ("layers.0.weight").
"""

from collections import defaultdict
from itertools import zip_longest
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

_TREES = (list, tuple, dict)


def _rebuild_seq(tree, items):
    """A list/tuple of `tree`'s type holding `items` (namedtuples take them positionally)."""
    return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)


def tree_map(fn: Callable, tree: Any, *rest: Any, is_leaf: Optional[Callable] = None) -> Any:
    """Apply `fn` to the leaves of `tree` (and the matching nodes of each tree in `rest`,
    which must have `tree`'s structure at least down to its leaves); returns the tree of
    the results."""
    if is_leaf is not None and is_leaf(tree):
        return fn(tree, *rest)
    if isinstance(tree, (list, tuple)):
        # a generator, as upstream: a StopIteration out of `fn` becomes a RuntimeError
        return _rebuild_seq(tree, (
            tree_map(fn, child, *[r[i] for r in rest], is_leaf=is_leaf)
            for i, child in enumerate(tree)))
    if isinstance(tree, dict):
        return {k: tree_map(fn, child, *[r[k] for r in rest], is_leaf=is_leaf)
                for k, child in tree.items()}
    return fn(tree, *rest)


def tree_map_with_path(fn: Callable, tree: Any, *rest: Any, is_leaf: Optional[Callable] = None,
                       path: Optional[Any] = None) -> Any:
    """Like :func:`tree_map`, but `fn` receives the dotted path of each leaf first."""
    if is_leaf is not None and is_leaf(tree):
        return fn(path, tree, *rest)
    if isinstance(tree, (list, tuple)):
        return _rebuild_seq(tree, (
            tree_map_with_path(fn, child, *[r[i] for r in rest], is_leaf=is_leaf,
                               path=f"{path}.{i}" if path else str(i))
            for i, child in enumerate(tree)))
    if isinstance(tree, dict):
        return {k: tree_map_with_path(fn, child, *[r[k] for r in rest], is_leaf=is_leaf,
                                      path=f"{path}.{k}" if path else str(k))
                for k, child in tree.items()}
    return fn(path, tree, *rest)


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
    if isinstance(destination, list):
        add = destination.append
    elif isinstance(destination, dict):
        def add(kv):
            destination[kv[0]] = kv[1]
    else:
        raise ValueError("Destination should be either a list or a dictionary or None")
    # an explicit stack, so that deep trees do not hit the recursion limit
    stack = [(prefix, tree)]
    pop, push = stack.pop, stack.append
    while stack:
        key, node = pop()
        if (is_leaf is None or not is_leaf(node)) and isinstance(node, _TREES):
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, child in reversed(list(items)):
                push((f"{key}.{k}", child))
        else:
            add((key[1:], node))
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
    elif items and all(k == "" for k, _ in items):
        # several leaves at one path: upstream recurses without end here
        raise RecursionError("maximum recursion depth exceeded")
    children = defaultdict(list)
    for key, value in items:
        head, *rest = key.split(".", maxsplit=1)
        children[head].append((rest[0] if rest else "", value))
    try:
        indices = [int(k) for k in children]
    except ValueError:
        indices = None
    if indices is None or len(set(indices)) != len(indices):
        return {k: tree_unflatten(v) for k, v in children.items()}
    out = []
    for i, k in sorted(zip(indices, children)):
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


def _empty(x):
    return isinstance(x, _TREES) and len(x) == 0


def tree_merge(tree_a, tree_b, merge_fn=None):
    """Merge two trees into one holding the values of both, like a deep dict.update.
    Empty containers and None count as absent subtrees; where both trees hold a value,
    `merge_fn(a, b)` decides (an error without one)."""
    a_empty, b_empty = _empty(tree_a), _empty(tree_b)
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
        return _rebuild_seq(tree_a, (tree_merge(x, y, merge_fn)
                                     for x, y in zip_longest(tree_a, tree_b)))
    if isinstance(tree_a, dict) and isinstance(tree_b, dict):
        keys = set(tree_a.keys()) | set(tree_b.keys())
        return {k: tree_merge(tree_a.get(k), tree_b.get(k), merge_fn) for k in keys}
    if merge_fn is None:
        raise ValueError("Trees contain elements at the same locations but no merge function "
                         "was provided")
    return merge_fn(tree_a, tree_b)
