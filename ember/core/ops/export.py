"""Exporting functions (export_function, exporter, import_function) and graphs (export_to_dot).

A function is traced once per signature on data-free arrays standing for the example
inputs (evaluating anything computed from them raises, as in compile): the part of
the lazy graph between them and the outputs is the function; every other array it reaches
is evaluated and kept as a constant. Importing replays the primitives as lazy nodes, so
an imported function's results are lazy and differentiable like any other. A shapeless
export matches inputs on rank and dtype only, and its output shapes are worked out
anew on every call (`ember.core._export.shapes`), as upstream's are.
"""


from ember.core import dtypes as D
from ember.core._export import codec as C
from ember.core._export.shapes import output_shapes
from ember.core.array import array, node, nodes
from ember.core.ops._base import as_array, resolve
from ember.core.ops.index import _slice
from ember.core.ops.misc import _identity
from ember.core.primitives.compiled import PLACEHOLDER
from ember.core.transforms.eval import TRACING, evaluate
from ember.core.transforms.graph import dependent_order, fmt_shape, signature_error

__all__ = ["export_function", "import_function", "exporter", "FunctionExporter",
           "export_to_dot"]

_INPUTS_ERR = ("[export_function] Inputs can either be a variable number of positional and "
               "keyword arrays or a single tuple and/or dictionary of arrays.")
_OUTPUTS_ERR = ("[export_function] Outputs can be either a single array, a tuple, or a list "
                "of arrays.")


def _letters(i):
    """Upstream's value names: A..Z, then AA, AB, ..."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _split_inputs(args, kwargs, err):
    """(positional arrays, {name: array}) from `*args, **kwargs` or `(tuple, dict)`."""
    if not kwargs and 1 <= len(args) <= 2 and isinstance(args[0], (tuple, list)) and (
            len(args) == 1 or isinstance(args[1], dict)):
        args, kwargs = tuple(args[0]), dict(args[1]) if len(args) == 2 else {}
    elif not kwargs and len(args) == 1 and isinstance(args[0], dict):
        args, kwargs = (), dict(args[0])
    if not all(isinstance(a, array) for a in args) or \
            not all(isinstance(k, str) and isinstance(v, array) for k, v in kwargs.items()):
        raise ValueError(err)
    return list(args), dict(kwargs)


def _match(inputs, keywords, args, kwargs, shapeless):
    """The call's (positional, keyword) arrays for a trace taking `inputs` [(shape, dtype)]
    and `keywords` {name: (shape, dtype)}, or None. As upstream, keywords the trace does
    not take are positional ones, after the others in the order of their names."""
    if kwargs.keys() - keywords.keys():
        args = list(args) + [kwargs[k] for k in sorted(kwargs) if k not in keywords]
        kwargs = {k: v for k, v in kwargs.items() if k in keywords}
    if len(args) != len(inputs) or len(kwargs) != len(keywords):
        return None

    def fits(a, shape, dtype):
        if a.dtype is not dtype:
            return False
        return len(a.shape) == len(shape) if shapeless else a.shape == shape
    if all(fits(a, s, d) for a, (s, d) in zip(args, inputs)) and \
            all(fits(kwargs[k], s, d) for k, (s, d) in keywords.items()):
        return args, kwargs
    return None


# -- tracing ---------------------------------------------------------------------------

def _trace(fun, args, kwargs, shapeless):
    """The header record of one trace of `fun` and its constants (arrays, in order)."""
    # data-free tracers: evaluating anything computed from them raises, as upstream
    tracers = [node(a._shape, a._dtype, PLACEHOLDER, (), a._stream) for a in args]
    kw_tracers = {k: node(v._shape, v._dtype, PLACEHOLDER, (), v._stream)
                  for k, v in kwargs.items()}
    TRACING[0] += 1
    try:
        outs = fun(*tracers, **kw_tracers)
    finally:
        TRACING[0] -= 1
    if isinstance(outs, array):
        outs = [outs]
    elif not isinstance(outs, (tuple, list)) or not all(isinstance(o, array) for o in outs):
        raise ValueError(_OUTPUTS_ERR)
    outs = list(outs)

    names = {}
    counter = [0]

    def name(a):
        n = names.get(id(a))
        if n is None:
            n = names[id(a)] = _letters(counter[0])
            counter[0] += 1
        return n

    all_tracers = tracers + list(kw_tracers.values())
    inputs = [[name(t), list(t.shape), t.dtype.name] for t in tracers]
    kw_inputs = [[k, name(t), list(t.shape), t.dtype.name] for k, t in kw_tracers.items()]
    out_recs = [[name(o), list(o.shape), o.dtype.name] for o in outs]
    order, dep = dependent_order(outs, [id(t) for t in all_tracers])
    consts = []
    seen_const = set()

    def operand(x):
        if id(x) not in dep and id(x) not in seen_const:
            seen_const.add(id(x))
            consts.append((name(x), x))
        return name(x)

    prims = []
    for a in order:
        p = a._prim
        try:
            enc = C.encode_primitive(p)
        except C.ExportError as e:
            raise ValueError(f"[export_function] Unable to export primitive "
                             f"{getattr(p, 'name', type(p).__name__)}: {e}.") from None
        sib = a._siblings if a._siblings is not None else (a,)
        prims.append({"prim": enc, "name": getattr(p, "name", type(p).__name__),
                      "inputs": [operand(x) for x in a._inputs],
                      "outputs": [[name(s), list(s.shape), s.dtype.name] for s in sib]})
    for o in outs:
        operand(o)
    # constants that depend on no input are computed now, once
    evaluate([x for _, x in consts])
    return {"inputs": inputs, "keywords": kw_inputs, "outputs": out_recs,
            "primitives": prims, "shapeless": shapeless}, consts


class _Exporter:
    """The traces of one function and their constants, written to a file or a callback."""

    def __init__(self, fun, shapeless, metadata):
        self.fun = fun
        self.shapeless = bool(shapeless)
        self.metadata = metadata
        self.traces = []
        self.signatures = []
        self.constants = []  # (header record, bytes)

    def add(self, args, kwargs):
        args, kwargs = _split_inputs(args, kwargs, _INPUTS_ERR)
        # as upstream, a trace is refused when an exported one would take its arguments
        # (keywords it does not know counting as positional ones)
        if any(_match(ins, kws, args, kwargs, self.shapeless) is not None
               for ins, kws in self.signatures):
            raise RuntimeError("[export_function] Attempting to export a function twice with "
                               "the same signature is not allowed.")
        rec, consts = _trace(self.fun, args, kwargs, self.shapeless)
        rec["constants"] = []
        for n, x in consts:
            offset = sum(c[0]["nbytes"] for c in self.constants)
            self.constants.append(C.constant_record(x, offset))
            rec["constants"].append([n, len(self.constants) - 1])
        self.signatures.append(([(a.shape, a.dtype) for a in args],
                                {k: (v.shape, v.dtype) for k, v in kwargs.items()}))
        self.traces.append(rec)
        return rec, consts

    def write(self, path):
        header = {"version": C.VERSION, "shapeless": self.shapeless,
                  "metadata": self.metadata, "traces": self.traces,
                  "constants": [c[0] for c in self.constants]}
        C.write(path, header, [c[1] for c in self.constants])


def _dtype(name):
    return D._by_name(name)


def _callback_records(rec, consts):
    """The trace as upstream hands it to an export callback."""
    ins = [(n, tuple(s), _dtype(d)) for n, s, d in rec["inputs"]]
    ins += [(n, tuple(s), _dtype(d)) for _, n, s, d in rec["keywords"]]
    out = [{"type": "inputs", "inputs": ins},
           {"type": "keyword_inputs", "keywords": [(k, n) for k, n, _, _ in rec["keywords"]]},
           {"type": "outputs",
            "outputs": [(n, tuple(s), _dtype(d)) for n, s, d in rec["outputs"]]},
           {"type": "constants", "constants": [(n, x) for n, x in consts]}]
    shapes = {n: (tuple(s), _dtype(d)) for n, s, d in rec["inputs"]}
    shapes.update((n, (tuple(s), _dtype(d))) for _, n, s, d in rec["keywords"])
    shapes.update((n, (x.shape, x.dtype)) for n, x in consts)
    for p in rec["primitives"]:
        outs = [(n, tuple(s), _dtype(d)) for n, s, d in p["outputs"]]
        shapes.update((n, (s, d)) for n, s, d in outs)
        prim = C.decode_primitive(p["prim"], None)
        out.append({"type": "primitive", "name": p["name"], "arguments": list(prim.params()),
                    "inputs": [(n,) + shapes[n] for n in p["inputs"]], "outputs": outs})
    return out


def _check_options(op, shapeless, metadata):
    # upstream's binding takes a bool and an optional str only
    if not isinstance(shapeless, bool):
        raise TypeError(f"{op}(): shapeless must be a bool, got {type(shapeless).__name__}.")
    if metadata is not None and not isinstance(metadata, str):
        raise TypeError(f"{op}(): metadata must be a str, got {type(metadata).__name__}.")


_EXPORT_SIG = ("export_function(file_or_callback: str | Callable, fun: Callable, *args, "
               "shapeless: bool = False, metadata: str | None = None, **kwargs) -> None")
_EXPORTER_SIG = ("exporter(file: str, fun: collections.abc.Callable, *, shapeless: bool = "
                 "False, metadata: str | None = None) -> mlx.core.FunctionExporter")


def export_function(file_or_callback, fun, *args, shapeless=False, metadata=None, **kwargs):
    if not callable(fun):
        raise signature_error("export_function", _EXPORT_SIG, (file_or_callback, fun) + args,
                              {})
    is_file = isinstance(file_or_callback, str)  # (upstream takes no path objects)
    if file_or_callback is None:
        raise TypeError("export_function(): file_or_callback must be a str or a callable, "
                        "got NoneType.")
    if not is_file and not callable(file_or_callback):
        # checked before tracing; upstream fails to convert it (a RuntimeError)
        raise RuntimeError(f"[export_function] file_or_callback must be a file name or a "
                           f"callable, got {type(file_or_callback).__name__}.")
    _check_options("export_function", shapeless, metadata)
    if not is_file and metadata is not None:
        raise ValueError("[export_function] The metadata argument is only supported when "
                         "exporting to a file, not when using a callback.")
    ex = _Exporter(fun, shapeless, metadata)
    rec, consts = ex.add(args, kwargs)
    if is_file:
        ex.write(file_or_callback)
    else:
        for r in _callback_records(rec, consts):
            file_or_callback(r)


class FunctionExporter:
    """A context managing class for exporting multiple traces of the same function to a
    file.

    Make an instance of this class by calling :func:`mx.exporter`."""

    def __init__(self, *args, **kwargs):
        raise TypeError("mlx.core.FunctionExporter: no constructor defined!")

    def __call__(self, *args, **kwargs):
        if self._closed:
            raise RuntimeError("[export_function] Attempting to write after exporting is "
                               "closed.")
        self._ex.add(args, kwargs)
        self._ex.write(self._path)

    def close(self):
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type=None, exc_value=None, traceback=None):
        self.close()


def exporter(file, fun, *, shapeless=False, metadata=None):
    if not isinstance(file, str) or not callable(fun):
        raise signature_error("exporter", _EXPORTER_SIG, (file, fun), {})
    _check_options("exporter", shapeless, metadata)
    e = object.__new__(FunctionExporter)
    e._ex = _Exporter(fun, shapeless, metadata)
    e._path = file
    e._closed = False
    # as upstream, the file is created now: an unwritable path fails here, and an exporter
    # never called leaves a file holding no functions
    e._ex.write(e._path)
    return e


# -- importing -------------------------------------------------------------------------

class _Imported:
    """One trace read back: matched against call arguments, replayed as lazy nodes."""

    def __init__(self, rec, constants, shapeless):
        self.rec = rec
        self.shapeless = shapeless
        self.inputs = [(n, tuple(s), _dtype(d)) for n, s, d in rec["inputs"]]
        self.keywords = {k: (n, tuple(s), _dtype(d)) for k, n, s, d in rec["keywords"]}
        self.constants = [(n, constants[i]) for n, i in rec["constants"]]
        self.outputs = [n for n, _, _ in rec["outputs"]]
        # the traced shape of each value (a shapeless call tells reshapes apart by them)
        self.traced = {n: tuple(sh) for n, sh, _ in rec["inputs"]}
        self.traced.update((n, tuple(sh)) for _, n, sh, _ in rec["keywords"])
        self.traced.update((n, tuple(x.shape)) for n, (x, _) in self.constants)
        self.traced.update((n, tuple(sh)) for p in rec["primitives"] for n, sh, _ in p["outputs"])
        self._by_stream = {}
        self._sig = ([(s, d) for _, s, d in self.inputs],
                     {k: (s, d) for k, (_, s, d) in self.keywords.items()})

    def matches(self, args, kwargs):
        return _match(*self._sig, args, kwargs, self.shapeless)

    def _prepared(self, s):
        """Primitives and constants for stream `s` (device parameters become its device)."""
        r = self._by_stream.get(s)
        if r is None:
            prims = [C.decode_primitive(p["prim"], s.tdevice) for p in self.rec["primitives"]]
            consts = {}
            for n, (arr, dt) in self.constants:
                consts[n] = as_array(array(arr, dt), s)
            r = self._by_stream[s] = (prims, consts)
        return r

    def __call__(self, args, kwargs, s):
        prims, consts = self._prepared(s)
        env = dict(consts)
        for a, (n, _, _) in zip(args, self.inputs):
            env[n] = as_array(a, s)
        for k, (n, _, _) in self.keywords.items():
            env[n] = as_array(kwargs[k], s)
        for p, rec in zip(prims, self.rec["primitives"]):
            ins = tuple(env[n] for n in rec["inputs"])
            outs = rec["outputs"]
            shapes = [tuple(sh) for _, sh, _ in outs]
            if self.shapeless:  # (at the traced shapes too, as upstream)
                shapes, p, first = output_shapes(
                    p, [x.shape for x in ins], [x.dtype for x in ins],
                    [self.traced[n] for n in rec["inputs"]], shapes, rec["name"])
                if first is not None:
                    ins = (_slice(ins[0], first, ()),) + ins[1:]
            dts = [_dtype(d) for _, _, d in outs]
            if len(outs) == 1:
                env[outs[0][0]] = node(tuple(shapes[0]), dts[0], p, ins, s)
            else:
                for (n, _, _), o in zip(outs, nodes([tuple(x) for x in shapes], dts, p, ins,
                                                    s)):
                    env[n] = o
        # an output that is an input comes back as a new array, as upstream's
        given = {n for n, _, _ in self.inputs} | {n for n, _, _ in self.keywords.values()}
        return tuple(_identity(env[n], s) if n in given else env[n] for n in self.outputs)


def _describe(args, kwargs):
    lines = [f"  {i + 1}: {fmt_shape(a.shape)} {a.dtype.name}" for i, a in enumerate(args)]
    lines += [f'  "{k}": {fmt_shape(a.shape)} {a.dtype.name}' for k, a in kwargs.items()]
    return lines


def _no_match(fns, args, kwargs):
    msg = ["[import_function::call] No imported function found which matches the given "
           "positional and keyword arguments. Possible functions include:"]
    for i, f in enumerate(fns):
        msg.append(f" {i + 1}. Function with {len(f.inputs)} positional inputs and "
                   f"{len(f.keywords)} keyword inputs:")
        msg += [f"   {j + 1}: {fmt_shape(s)} {d.name}" for j, (_, s, d) in enumerate(f.inputs)]
        msg += [f'   "{k}": {fmt_shape(s)} {d.name}' for k, (_, s, d) in f.keywords.items()]
    msg.append("")
    msg.append(f"Called with {len(args)} positional inputs and {len(kwargs)} keyword inputs:")
    msg += _describe(args, kwargs)
    return ValueError("\n".join(msg) + "\n")


_IMPORT_SIG = ("import_function(file: str, return_metadata: bool = False) -> Callable | "
               "tuple[Callable, str]")


def import_function(file, return_metadata=False):
    # upstream's binding takes a str and a bool only
    if not isinstance(file, str) or not isinstance(return_metadata, bool):
        raise signature_error("import_function", _IMPORT_SIG, (file, return_metadata), {})
    header, blob = C.read(file)
    constants = [C.constant_value(r, blob) for r in header["constants"]]
    fns = [_Imported(t, constants, header["shapeless"]) for t in header["traces"]]

    def imported(*args, **kwargs):
        args, kwargs = _split_inputs(
            args, kwargs, "[import_function::call] Inputs can either be a variable number of "
            "positional and keyword arrays or a single tuple and/or dictionary of arrays.")
        for f in fns:
            call = f.matches(args, kwargs)
            if call is not None:
                return f(*call, resolve(None))
        raise _no_match(fns, args, kwargs)

    imported.__name__ = imported.__qualname__ = "imported_function"
    if return_metadata:
        return imported, header["metadata"] or ""
    return imported


# -- Graphviz --------------------------------------------------------------------------

def export_to_dot(file, *args, **kwargs):
    from ember.core.transforms.graph import flatten_arrays
    if file is None:
        raise TypeError("export_to_dot(): file must be a file-like object or a str, got "
                        "NoneType.")
    if not isinstance(file, str) and not callable(getattr(file, "write", None)):
        raise ValueError("[export_to_dot] Accepts file-like objects or strings to be used "
                         "as filenames.")
    if not all(isinstance(v, array) for v in kwargs.values()):
        raise ValueError("[tree_flatten] The argument should contain only arrays")
    outs = flatten_arrays(list(args), [])
    names = {id(v): k for k, v in kwargs.items() if isinstance(v, array)}
    counter = [0]

    def name(a):
        n = names.get(id(a))
        if n is None:
            n = names[id(a)] = _letters(counter[0])
            counter[0] += 1
        return n

    order = []  # the sources and the nodes, inputs first
    done = set()
    for o in outs:
        # iterative post-order walk over unevaluated nodes
        stack = [(o, False)]
        while stack:
            a, expanded = stack.pop()
            if id(a) in done:
                continue
            if a._data is not None or a._prim is None:
                done.add(id(a))
                order.append(a)
                continue
            if not expanded:
                stack.append((a, True))
                stack.extend((x, False) for x in reversed(a._inputs) if id(x) not in done)
                continue
            sib = a._siblings if a._siblings is not None else (a,)
            done.update(id(s) for s in sib)
            order.append(a)
    # as upstream, the sinks are the arrays no node of the graph reads
    used = {id(x) for a in order if a._data is None and a._prim is not None for x in a._inputs}
    lines = ["digraph {"]
    for a in order:
        if a._data is not None or a._prim is None:
            lines.append(f'{{ rank=source; "{name(a)}"; }}')
            continue
        sib = a._siblings if a._siblings is not None else (a,)
        pid = id(sib[0])
        label = getattr(a._prim, "name", type(a._prim).__name__)
        lines.append(f'{{ {pid} [label ="{label}", shape=rectangle]; }}')
        lines += [f'"{name(x)}" -> {pid}' for x in a._inputs]
        for s in sib:
            lines.append(f'{{ "{name(s)}"; }}' if id(s) in used
                         else f'{{ rank=sink; "{name(s)}"; }}')
            lines.append(f'{pid} -> "{name(s)}"')
    lines.append("}")
    text = "\n".join(lines)
    if isinstance(file, str):
        try:
            f = open(file, "w")
        except OSError:  # (upstream writes nothing and says nothing: a file it cannot open)
            return
        with f:
            f.write(text)
    else:
        file.write(text)
