"""Every public name of upstream's mlx.core and its submodules exists in Ember, and every
callable takes the same parameters (names, kinds, defaults).

Upstream's callables are nanobind functions: their signatures come from
`__nb_signature__` (or the first line of `__doc__`), parsed here.
"""

import ast
import importlib
import inspect
import re

import mlx.core as mlx
import pytest

import ember.core as mx

MODULES = ["", "random", "fft", "linalg", "fast", "metal", "cuda", "distributed"]

P = inspect.Parameter
_KINDS = {P.POSITIONAL_ONLY: "pos-only", P.POSITIONAL_OR_KEYWORD: "pos/kw",
          P.VAR_POSITIONAL: "*args", P.KEYWORD_ONLY: "kw-only", P.VAR_KEYWORD: "**kwargs"}
_NO_DEFAULT = P.empty


def _modules(sub):
    if not sub:
        return mlx, mx
    up = getattr(mlx, sub)
    try:
        ours = importlib.import_module(f"ember.core.{sub}")
    except ImportError:
        ours = None
    return up, ours


def _split_top(s):
    """Split `s` at commas outside brackets and quotes."""
    parts, depth, cur, quote = [], 0, [], None
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def _default_split(p):
    """(text before the top-level ' = ', default text or None)."""
    depth = 0
    for i, ch in enumerate(p):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "=" and depth == 0:
            return p[:i].strip(), p[i + 1:].strip()
    return p.strip(), None


class _Obj:
    """A default value given as an object rather than as text."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)


def parse_nb(sig, defaults=None):
    """[(name, kind, default text or _NO_DEFAULT)] from 'def f(a: T, /, b=1, *, c=None)'.

    nanobind writes some defaults as `\\N`, the N-th of the objects in `defaults`; those
    come back as `_Obj(value)`."""
    body = sig[sig.index("(") + 1:]
    depth = 1
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            body = body[:i]
            break
    params, kind = [], P.POSITIONAL_OR_KEYWORD
    raw = _split_top(body)
    if "/" in raw:
        cut = raw.index("/")
        raw = [(r, P.POSITIONAL_ONLY) for r in raw[:cut]] + \
            [(r, None) for r in raw[cut + 1:]]
    else:
        raw = [(r, None) for r in raw]
    for r, forced in raw:
        if r == "*":
            kind = P.KEYWORD_ONLY
            continue
        head, default = _default_split(r)
        name = head.split(":")[0].strip()
        if name.startswith("**"):
            params.append((name[2:], P.VAR_KEYWORD, _NO_DEFAULT))
        elif name.startswith("*"):
            params.append((name[1:], P.VAR_POSITIONAL, _NO_DEFAULT))
            kind = P.KEYWORD_ONLY
        else:
            if default is None:
                default = _NO_DEFAULT
            elif re.fullmatch(r"\\\d+", default) and defaults is not None:
                default = _Obj(defaults[int(default[1:])])
            params.append((name, kind if forced is None else forced, default))
    if params and params[0][0] == "self":
        params = params[1:]
    return params


def upstream_signatures(obj):
    sigs = getattr(obj, "__nb_signature__", None)
    if sigs:
        return [parse_nb(s[0], s[2]) for s in sigs]
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    if doc and "(" in doc[0]:
        return [parse_nb(doc[0])]
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[(p.name, p.kind, _NO_DEFAULT if p.default is P.empty else repr(p.default))
             for p in sig.parameters.values() if p.name != "self"]]


def ember_signature(obj, method=False):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    ps = list(sig.parameters.values())
    if method and ps and ps[0].name == "self":
        ps = ps[1:]
    return [(p.name, p.kind, p.default) for p in ps]


def _same_default(text, value):
    if text is _NO_DEFAULT or value is P.empty:
        return text is _NO_DEFAULT and value is P.empty
    if isinstance(text, _Obj):
        u = text.value
        if type(u).__name__ == "Dtype":
            return getattr(value, "name", None) == str(u).split(".")[-1]
        return type(u) is type(value) and u == value or repr(u) == repr(value)
    try:
        lit = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lit = text
        if getattr(value, "name", None) == text:  # a dtype, named bare (float32)
            return True
        return repr(value) == text or str(value) == text
    if isinstance(lit, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(lit) == list(value)
    return type(lit) is type(value) and lit == value or (
        isinstance(lit, float) and isinstance(value, float) and lit == value)


def _fmt(params):
    out = []
    for n, k, d in params:
        s = {P.VAR_POSITIONAL: "*", P.VAR_KEYWORD: "**"}.get(k, "") + n
        if k == P.POSITIONAL_ONLY:
            s += "/"
        elif k == P.KEYWORD_ONLY:
            s = "*" + s if not s.startswith("*") else s
        if d is not _NO_DEFAULT and d is not P.empty:
            s += f"={d}"
        out.append(s)
    return "(" + ", ".join(out) + ")"


def _shape(name, kind):
    # callers never see the names of positional-only parameters
    return (None if kind == P.POSITIONAL_ONLY else name), kind


def compare(up_sigs, ours):
    """None when `ours` matches one of upstream's overloads (all of them when there are
    several: Ember has one signature that must accept each), else a short reason."""
    if ours is None:
        return "no inspectable signature"
    if len(up_sigs) > 1:
        # overloads: each upstream parameter name must be accepted in a compatible kind
        names = {n: k for n, k, _ in ours}
        var = any(k in (P.VAR_POSITIONAL, P.VAR_KEYWORD) for _, k, _ in ours)
        for sig in up_sigs:
            for n, k, _ in sig:
                if n not in names and not var:
                    return f"missing parameter {n} (overload {_fmt(sig)})"
        return None
    up = up_sigs[0]
    if [_shape(n, k) for n, k, _ in up] != [_shape(n, k) for n, k, _ in ours]:
        return f"upstream {_fmt(up)} vs ember {_fmt(ours)}"
    for (n, _, du), (_, _, de) in zip(up, ours):
        if not _same_default(du, de):
            return f"default of {n}: upstream {du} vs ember {de!r}"
    return None


def _public(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def _check_callable(label, up_obj, our_obj, problems, method=False):
    up_sigs = upstream_signatures(up_obj)
    if not up_sigs:
        return
    why = compare(up_sigs, ember_signature(our_obj, method))
    if why:
        problems.append(f"{label}: {why}")


def _check_class(label, up_cls, our_cls, missing, problems):
    init = getattr(up_cls, "__init__", None)
    if getattr(init, "__nb_signature__", None):
        why = compare(upstream_signatures(init), ember_signature(our_cls))
        if why:
            problems.append(f"{label}(): {why}")
    for n in _public(up_cls):
        ua = inspect.getattr_static(up_cls, n)
        if not hasattr(our_cls, n):
            missing.append(f"{label}.{n}")
            continue
        if type(ua).__name__ in ("nb_method", "nb_func") or callable(ua) and \
                getattr(ua, "__nb_signature__", None):
            oa = inspect.getattr_static(our_cls, n)
            is_static = isinstance(oa, (staticmethod, classmethod))
            _check_callable(f"{label}.{n}", getattr(up_cls, n), getattr(our_cls, n),
                            problems, method=not is_static)


def surface_report(sub):
    up, ours = _modules(sub)
    prefix = f"{sub}." if sub else ""
    if ours is None:
        return [f"module ember.core.{sub}"], []
    missing, problems = [], []
    for n in _public(up):
        u = getattr(up, n)
        if inspect.ismodule(u):
            if not inspect.ismodule(getattr(ours, n, None)):
                missing.append(prefix + n)
            continue
        if not hasattr(ours, n):
            missing.append(prefix + n)
            continue
        o = getattr(ours, n)
        if isinstance(u, type):
            if not isinstance(o, type):
                problems.append(f"{prefix}{n}: a class upstream, {type(o).__name__} here")
            else:
                _check_class(prefix + n, u, o, missing, problems)
        elif type(u).__name__ == "nb_func":
            _check_callable(prefix + n, u, o, problems)
        elif isinstance(u, (int, float, str)) and not isinstance(u, bool):
            if u != o and not (u != u and o != o):
                problems.append(f"{prefix}{n}: value {u!r} upstream, {o!r} here")
        elif type(u).__name__ == "Dtype":
            if getattr(o, "name", None) != str(u).split(".")[-1]:
                problems.append(f"{prefix}{n}: dtype {u} upstream, {o!r} here")
    return missing, problems


def test_parse_nb_signature():
    ps = parse_nb("def f(a: array, /, axis: None | int | Sequence[int] = None, "
                  "keepdims: bool = False, *, stream: StreamOrDevice = None) -> array")
    assert ps == [("a", P.POSITIONAL_ONLY, _NO_DEFAULT),
                  ("axis", P.POSITIONAL_OR_KEYWORD, "None"),
                  ("keepdims", P.POSITIONAL_OR_KEYWORD, "False"),
                  ("stream", P.KEYWORD_ONLY, "None")]
    ps = parse_nb("def init(strict: bool = False, backend: str = 'any', *, f: "
                  "Callable[[int, int], Callable[[bytes, int], bytes]] | None = None) -> Group")
    assert [p[0] for p in ps] == ["strict", "backend", "f"] and ps[1][2] == "'any'"
    assert parse_nb("def eval(*args) -> None") == [("args", P.VAR_POSITIONAL, _NO_DEFAULT)]


def test_compare_detects_mismatches():
    def good(a, /, axis=None, keepdims=False, *, stream=None):
        pass

    def bad_kind(a, axis=None, keepdims=False, *, stream=None):
        pass

    def bad_default(a, /, axis=None, keepdims=True, *, stream=None):
        pass

    up = upstream_signatures(mlx.sum)
    assert compare(up, ember_signature(good)) is None
    assert compare(up, ember_signature(bad_kind)) is not None
    assert "keepdims" in compare(up, ember_signature(bad_default))


# where upstream's printed signature is narrower than what it accepts, Ember follows the
# behaviour (each checked against upstream in the op's own tests)
BEHAVIOUR_OVER_SIGNATURE = {
    "roll",       # upstream prints axis as positional-only, yet takes roll(a, 1, axis=0)
    "save_gguf",  # upstream prints metadata as required, yet saves without it
    "count_nonzero",  # upstream prints axis as keyword-only, yet takes it by position
    "array_equal",  # upstream prints equal_nan as positional, yet takes it by keyword only
}


def test_roll_and_save_gguf_take_what_upstream_takes(tmp_path):
    for m in (mx, mlx):
        assert m.roll(m.arange(5), 1, axis=0).tolist() == [4, 0, 1, 2, 3]
        m.save_gguf(str(tmp_path / "w.gguf"), {"w": m.ones(3)})


@pytest.mark.parametrize("sub", MODULES, ids=[m or "core" for m in MODULES])
def test_api_surface(sub):
    missing, problems = surface_report(sub)
    problems = [p for p in problems if p.split(":")[0] not in BEHAVIOUR_OVER_SIGNATURE]
    msg = []
    if missing:
        msg.append(f"{len(missing)} missing: " + ", ".join(missing))
    if problems:
        msg.append(f"{len(problems)} signature mismatches:\n  " + "\n  ".join(problems))
    assert not msg, "\n".join(msg)
