"""Graph walks shared by the transforms."""


def outputs_of(a):
    """All outputs of the primitive that produced `a` (its siblings, or itself)."""
    return a._siblings if a._siblings is not None else (a,)


def topo(outs, stop):
    """Nodes reachable from `outs` through recipes, inputs before users, not entering the
    nodes whose id is in `stop` (they are listed, their inputs are not)."""
    order = []
    done = set()
    for o in outs:
        if id(o) in done:
            continue
        stack = [o]
        while stack:
            a = stack[-1]
            if id(a) in done:
                stack.pop()
                continue
            pushed = False
            if id(a) not in stop:
                for x in a._inputs:
                    if id(x) not in done:
                        stack.append(x)
                        pushed = True
            if not pushed:
                stack.pop()
                for s in outputs_of(a):
                    done.add(id(s))
                order.append(a)
    return order


def dependents(order, sources):
    """ids of the nodes in `order` that depend on any node id in `sources`."""
    dep = set(sources)
    for a in order:
        if id(a) in dep:
            continue
        for x in a._inputs:
            if id(x) in dep:
                for s in outputs_of(a):
                    dep.add(id(s))
                break
    return dep
