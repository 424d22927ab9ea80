"""Graph walks and argument handling shared by the transforms."""

from ember.core.array import array


def outputs_of(a):
    """All outputs of the primitive that produced `a` (its siblings, or itself)."""
    return a._siblings if a._siblings is not None else (a,)


def dependent_order(outs, sources, stop=None):
    """The nodes reachable from `outs` that depend on a node whose id is in `sources`,
    inputs before users (one node per multi-output primitive), and the set of the ids of
    every dependent node (siblings included). The walk does not enter the sources, and
    dependence does not pass through primitives of class `stop`.

    Iterative post-order DFS (10^6-node chains must not hit the recursion limit): a node
    is popped twice, once to push its inputs and once, after them, to be emitted."""
    dep = set(sources)
    order = []
    emit = order.append
    done = set()
    expanded = set()
    for o in outs:
        if id(o) in dep or not o._inputs:
            continue
        stack = [o]
        push = stack.append
        pop = stack.pop
        while stack:
            a = pop()
            ia = id(a)
            if ia in done:
                continue
            ins = a._inputs
            if ia not in expanded:
                expanded.add(ia)
                push(a)
                for x in ins:
                    # nodes without inputs (data, placeholders) can only be sources
                    if x._inputs and id(x) not in done and id(x) not in dep:
                        push(x)
                continue
            sib = a._siblings
            for x in ins if a._prim.__class__ is not stop else ():
                if id(x) in dep:
                    emit(a)
                    if sib is None:
                        dep.add(ia)
                    else:
                        dep.update(id(s) for s in sib)
                    break
            if sib is None:
                done.add(ia)
            else:
                done.update(id(s) for s in sib)
    return order, dep


# -- trees of arrays (the arguments and results of grad and vmap) -----------------------

def flatten_arrays(tree, out):
    """Append the leaves of `tree` (lists, tuples, dicts) to `out`; every leaf must be an
    array."""
    if type(tree) is dict:  # (a model's parameters: one call per container, not per leaf)
        for x in tree.values():
            if type(x) is array:
                out.append(x)
            else:
                flatten_arrays(x, out)
        return out
    if isinstance(tree, array):
        out.append(tree)
    elif isinstance(tree, (list, tuple)):
        for x in tree:
            flatten_arrays(x, out)
    elif isinstance(tree, dict):
        for x in tree.values():
            flatten_arrays(x, out)
    else:
        raise ValueError("[tree_flatten] The argument should contain only arrays")
    return out


def map_tree(tree, is_leaf, fn):
    """`tree` (lists, tuples, named tuples, dicts) rebuilt with `fn` applied to the leaves
    for which `is_leaf` holds; any other leaf stays as it is."""
    if is_leaf(tree):
        return fn(tree)
    if isinstance(tree, (list, tuple)):
        items = [map_tree(x, is_leaf, fn) for x in tree]
        if type(tree) is list:
            return items
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    if isinstance(tree, dict):
        return {k: map_tree(x, is_leaf, fn) for k, x in tree.items()}
    return tree


def is_array(x):
    return isinstance(x, array)


def rebuild(tree, it):
    """`tree` with its array leaves replaced, in order, by the items of iterator `it`."""
    t = type(tree)  # (plain dicts, lists and arrays directly: a model's parameters)
    if t is array:
        return next(it)
    if t is dict:
        return {k: rebuild(x, it) for k, x in tree.items()}
    if t is list:
        return [rebuild(x, it) for x in tree]
    return map_tree(tree, is_array, lambda _: next(it))


def substitute(tree, it, saved):
    """`tree` with its array leaves replaced, in order, by the items of iterator `it`,
    written into its lists and dicts themselves, as upstream's grad does: the function sees
    the very containers it was given (a Module stays a Module). `saved` collects
    (container, key, old leaf) for `restore`; tuples are rebuilt."""
    if isinstance(tree, array):
        return next(it)
    if isinstance(tree, dict):
        for k, x in tree.items():
            if isinstance(x, (array, tuple)):
                saved.append((tree, k, x))
                dict.__setitem__(tree, k, substitute(x, it, saved))
            else:
                substitute(x, it, saved)
    elif isinstance(tree, list):
        for k, x in enumerate(tree):
            if isinstance(x, (array, tuple)):
                saved.append((tree, k, x))
                tree[k] = substitute(x, it, saved)
            else:
                substitute(x, it, saved)
    elif isinstance(tree, tuple):
        items = [substitute(x, it, saved) for x in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    return tree


def restore(saved):
    for c, k, x in reversed(saved):
        if isinstance(c, dict):
            dict.__setitem__(c, k, x)
        else:
            c[k] = x


def fmt_shape(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def signature_error(name, signature, args, kwargs):
    """The TypeError upstream's bindings raise for arguments of the wrong type."""
    types = [type(a).__name__ for a in args]
    if kwargs:
        types.append("kwargs = { " + ", ".join(f"{k}: {type(v).__name__}"
                                               for k, v in kwargs.items()) + " }")
    return TypeError(f"{name}(): incompatible function arguments. The following argument types "
                     f"are supported:\n    1. {signature}\n\nInvoked with types: "
                     + ", ".join(types))
