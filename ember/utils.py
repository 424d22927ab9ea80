"""Pytree utilities, as in mlx.utils: trees are nested lists, tuples and dicts."""

from collections import defaultdict


def _is_tree(x):
    return isinstance(x, (list, tuple, dict))


def tree_map(fn, tree, *rest, is_leaf=None):
    if is_leaf is not None and is_leaf(tree):
        return fn(tree, *rest)
    if isinstance(tree, (list, tuple)):
        cls = type(tree)
        items = [tree_map(fn, child, *(r[i] for r in rest), is_leaf=is_leaf)
                 for i, child in enumerate(tree)]
        return cls(*items) if hasattr(tree, "_fields") else cls(items)
    if isinstance(tree, dict):
        return {k: tree_map(fn, child, *(r[k] for r in rest), is_leaf=is_leaf)
                for k, child in tree.items()}
    return fn(tree, *rest)


def tree_map_with_path(fn, tree, *rest, is_leaf=None, path=None):
    if is_leaf is not None and is_leaf(tree):
        return fn(path, tree, *rest)
    if isinstance(tree, (list, tuple)):
        cls = type(tree)
        items = [tree_map_with_path(fn, child, *(r[i] for r in rest), is_leaf=is_leaf,
                                    path=f"{path}.{i}" if path else str(i))
                 for i, child in enumerate(tree)]
        return cls(*items) if hasattr(tree, "_fields") else cls(items)
    if isinstance(tree, dict):
        return {k: tree_map_with_path(fn, child, *(r[k] for r in rest), is_leaf=is_leaf,
                                      path=f"{path}.{k}" if path else str(k))
                for k, child in tree.items()}
    return fn(path, tree, *rest)


def tree_flatten(tree, prefix="", is_leaf=None, destination=None):
    """[(dotted path, leaf)] in depth-first order (a dict when `destination` is a dict)."""
    flat = [] if destination is None else destination
    add = flat.append if isinstance(flat, list) else (lambda kv: flat.__setitem__(*kv))
    stack = [(prefix, tree)]
    out = []
    while stack:
        path, node = stack.pop()
        if (is_leaf is None or not is_leaf(node)) and _is_tree(node):
            items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            for k, child in reversed(items):
                stack.append((f"{path}.{k}" if path else str(k), child))
        else:
            out.append((path[1:] if path.startswith(".") else path, node))
    for kv in out:
        add(kv)
    return flat


def tree_unflatten(tree):
    """The inverse of tree_flatten: integer keys make lists, others dicts."""
    items = list(tree.items()) if isinstance(tree, dict) else list(tree)
    if len(items) == 1 and items[0][0] == "":
        return items[0][1]
    children = defaultdict(list)
    for key, value in items:
        head, _, rest = key.partition(".")
        children[head].append((rest, value))
    if all(k.isdigit() for k in children):
        keys = sorted(children, key=int)
        return [tree_unflatten(children[k]) for k in keys]
    return {k: tree_unflatten(v) for k, v in children.items()}


def tree_reduce(fn, tree, initializer=None, is_leaf=None):
    if is_leaf is not None and is_leaf(tree) or not _is_tree(tree):
        return tree if initializer is None else fn(initializer, tree)
    acc = initializer
    children = tree.values() if isinstance(tree, dict) else tree
    for child in children:
        acc = tree_reduce(fn, child, acc, is_leaf)
    return acc


def tree_merge(tree_a, tree_b, merge_fn=None):
    """Merge two trees of the same structure where at most one side has a leaf."""
    if _is_tree(tree_a) and _is_tree(tree_b) or (tree_a is None) != (tree_b is None) and \
            (_is_tree(tree_a) or _is_tree(tree_b)):
        if tree_a is None or tree_b is None:
            return tree_a if tree_b is None else tree_b
        if type(tree_a) is not type(tree_b):
            raise ValueError("Trees contain elements at the same locations but have "
                             "different types.")
        if isinstance(tree_a, dict):
            keys = list(tree_a) + [k for k in tree_b if k not in tree_a]
            return {k: tree_merge(tree_a.get(k), tree_b.get(k), merge_fn) for k in keys}
        n = max(len(tree_a), len(tree_b))
        a = list(tree_a) + [None] * (n - len(tree_a))
        b = list(tree_b) + [None] * (n - len(tree_b))
        return type(tree_a)(tree_merge(x, y, merge_fn) for x, y in zip(a, b))
    if tree_a is None:
        return tree_b
    if tree_b is None:
        return tree_a
    if merge_fn is None:
        raise ValueError("Trees contain leaves at the same locations and no merge "
                         "function was provided.")
    return merge_fn(tree_a, tree_b)
