"""Whole models: Ember vs upstream MLX vs torch eager, in one run on one device.

The models and sizes of the MLX Ruby benchmark:

- transformer: `nn.Transformer(D, H, L encoder + L decoder layers, mlp 4D, dropout 0)` on
  src (B, S, D) and tgt (B, T, D) with additive causal masks on both, forward;
- cnn: NHWC (B, 64, 64, 3) -> Conv2d(3, 16, 3, p1) -> ReLU -> MaxPool2d(2) ->
  Conv2d(16, 32, 3, p1) -> ReLU -> MaxPool2d(2) -> Linear(8192, 1024), forward;
- mlp: Linear(4D, 4D) -> ReLU -> Linear(4D, 4D) -> ReLU -> Linear(4D, D) on (B, 4D), forward;
- rnn: `nn.RNN(D, 2D)` over (B, S, D), forward;
- gpt: a char-GPT (vocabulary 96, context S: token + position embeddings, L pre-norm
  `TransformerEncoderLayer`s under a causal mask, final norm, linear head) train step:
  `value_and_grad` of the mean cross-entropy, AdamW update, eval.

Sizes: small (B2 S32 T16 D64 H4 L2), default (B8 S128 T64 D256 H8 L4) and, for gpt only,
large (B16 S512 D768 H12 L12).

The model code is written once against a module handle `(mx, nn, optim)` and runs on
Ember (`ember.core`, `ember.nn`, `ember.optimizers`) and upstream MLX (`mlx.*`); torch
runs the `torch.nn` equivalents (`nn.Transformer`, `nn.RNN`, ... with `batch_first`).
All three get the same weights (Ember's seeded init; the attention biases that torch's
`nn.Transformer` has and MLX's has not are zero; the gpt's torch attention has none) and
the same inputs. Every step is followed by an eval (Ember, MLX: `mx.eval`;
on the GPU also `mx.synchronize` / `torch.cuda.synchronize` for every framework); the
figure is the median ms per step over `--iters` steps after `--warmup` steps, the
frameworks one after the other; `--rounds N` splits the timed steps into N blocks per
framework taken in turn, so that load that comes and goes on a shared machine hits them
alike. `--threads` sets torch's intra-op threads, which Ember shares (MLX's CPU backend
keeps its own).

    python -m benchmarks.models [--device cpu|gpu] [--models transformer,cnn,mlp,rnn,gpt]
        [--sizes small,default] [--frameworks ember,mlx,torch] [--warmup N] [--iters N]
        [--threads N] [--rounds N] [--json out.json]
"""

import argparse
import gc
import json
import platform
import statistics
import sys
import warnings

import numpy as np

from benchmarks._timing import median_time

MODELS = ["transformer", "cnn", "mlp", "rnn", "gpt"]
FRAMEWORKS = ["ember", "mlx", "torch"]
SIZES = {
    "small": dict(B=2, S=32, T=16, D=64, H=4, L=2),
    "default": dict(B=8, S=128, T=64, D=256, H=8, L=4),
    "large": dict(B=16, S=512, T=512, D=768, H=12, L=12),
}
LARGE_MODELS = {"gpt"}  # the only model benchmarked at the large size
# (warmup, timed steps) per size: the whole CPU run at small + default stays in minutes
STEPS = {"small": (5, 30), "default": (2, 7), "large": (1, 3)}
VOCAB = 96
LR = 3e-4


# --- inputs and weights -----------------------------------------------------------------

def make_inputs(model, cfg, seed=0):
    """The inputs of one step as numpy arrays (the same for every framework)."""
    rng = np.random.default_rng(seed)
    B, S, T, D = cfg["B"], cfg["S"], cfg["T"], cfg["D"]

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    if model == "transformer":
        return {"src": normal(B, S, D), "tgt": normal(B, T, D)}
    if model == "cnn":
        return {"x": normal(B, 64, 64, 3)}
    if model == "mlp":
        return {"x": normal(B, 4 * D)}
    if model == "rnn":
        return {"x": normal(B, S, D)}
    tokens = rng.integers(0, VOCAB, size=(B, S + 1), dtype=np.int32)
    return {"x": tokens[:, :-1], "y": tokens[:, 1:]}


def causal_mask(n):
    """(n, n) additive causal mask as numpy (what `create_additive_causal_mask` makes)."""
    return np.triu(np.full((n, n), np.finfo(np.float32).min, np.float32), 1)


def init_params(model, cfg, seed=0):
    """The benchmark's weights: Ember's seeded init, as {MLX parameter name: numpy}."""
    import ember.core as mx
    import ember.nn as nn
    import ember.optimizers as optim
    from ember.utils import tree_flatten
    with mx.stream(mx.cpu):
        mx.random.seed(seed)
        net = mlx_models(mx, nn, optim)[model](cfg)
        return {k: np.array(v) for k, v in tree_flatten(net.parameters())}


# --- the models, written once for Ember and upstream MLX -----------------------------

def mlx_models(mx, nn, optim):
    """{model name: constructor(cfg)} over the module handle (mx, nn, optim)."""

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8192, 1024)

        def __call__(self, x):
            x = self.pool(self.relu(self.conv1(x)))
            x = self.pool(self.relu(self.conv2(x)))
            return self.fc(x.reshape(x.shape[0], -1))

    class MLP(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.l1 = nn.Linear(4 * d, 4 * d)
            self.l2 = nn.Linear(4 * d, 4 * d)
            self.l3 = nn.Linear(4 * d, d)

        def __call__(self, x):
            return self.l3(nn.relu(self.l2(nn.relu(self.l1(x)))))

    class GPT(nn.Module):
        def __init__(self, context, d, heads, layers):
            super().__init__()
            self.tok = nn.Embedding(VOCAB, d)
            self.pos = nn.Embedding(context, d)
            self.blocks = nn.TransformerEncoder(layers, d, heads, norm_first=True)
            self.head = nn.Linear(d, VOCAB)

        def __call__(self, idx, mask):
            x = self.tok(idx) + self.pos(mx.arange(idx.shape[1]))
            return self.head(self.blocks(x, mask))

    return {
        "transformer": lambda c: nn.Transformer(c["D"], c["H"], c["L"], c["L"], 4 * c["D"],
                                                dropout=0.0),
        "cnn": lambda c: CNN(),
        "mlp": lambda c: MLP(c["D"]),
        "rnn": lambda c: nn.RNN(c["D"], 2 * c["D"]),
        "gpt": lambda c: GPT(c["S"], c["D"], c["H"], c["L"]),
    }


class Case:
    """One model in one framework: `step()` runs a timed step (ending in eval), `sync()`
    waits for the device, `forward()` returns the model output as numpy and, for gpt,
    `loss_and_grads()` returns (loss, {MLX parameter name: gradient}) as numpy."""

    def __init__(self, step, sync, forward, loss_and_grads=None):
        self.step = step
        self.sync = sync
        self.forward = forward
        self.loss_and_grads = loss_and_grads


def _mlx_handle(framework):
    if framework == "ember":
        import ember.core as mx
        import ember.nn as nn
        import ember.optimizers as optim
        from ember.utils import tree_flatten
    else:
        import mlx.core as mx
        import mlx.nn as nn
        import mlx.optimizers as optim
        from mlx.utils import tree_flatten
    return mx, nn, optim, tree_flatten


def mlx_case(framework, model, cfg, device, params, seed=0):
    """A Case for Ember (`framework="ember"`) or upstream MLX (`"mlx"`)."""
    mx, nn, optim, tree_flatten = _mlx_handle(framework)
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    net = mlx_models(mx, nn, optim)[model](cfg)
    net.load_weights([(k, mx.array(v)) for k, v in params.items()], strict=True)
    data = {k: mx.array(v) for k, v in make_inputs(model, cfg, seed).items()}
    mask = nn.MultiHeadAttention.create_additive_causal_mask
    mx.eval(net.parameters(), data)
    wait = mx.synchronize if device == "gpu" else (lambda: None)

    if model == "transformer":
        src, tgt = data["src"], data["tgt"]
        src_mask, tgt_mask = mask(cfg["S"]), mask(cfg["T"])

        def fwd():
            return net(src, tgt, src_mask, tgt_mask, None)
    elif model == "gpt":
        x, y, causal = data["x"], data["y"], mask(cfg["S"])

        def fwd():
            return net(x, causal)
    else:
        x = data["x"]

        def fwd():
            return net(x)

    def forward():
        return np.array(fwd())

    if model != "gpt":
        def step():
            mx.eval(fwd())
            wait()
        return Case(step, mx.synchronize, forward)

    def loss_fn(x, y):
        return nn.losses.cross_entropy(net(x, causal), y, reduction="mean")

    loss_and_grad = nn.value_and_grad(net, loss_fn)
    # bias correction: the same update as torch.optim.AdamW
    opt = optim.AdamW(learning_rate=LR, bias_correction=True)
    opt.init(net.trainable_parameters())
    mx.eval(opt.state)

    def step():
        loss, grads = loss_and_grad(x, y)
        opt.update(net, grads)
        mx.eval(loss, net.parameters(), opt.state)
        wait()

    def loss_and_grads():
        loss, grads = loss_and_grad(x, y)
        return loss.item(), {k: np.array(g) for k, g in tree_flatten(grads)}

    return Case(step, mx.synchronize, forward, loss_and_grads)


# --- torch eager --------------------------------------------------------------------

def _torch_mha(p, src, dst, out, bias):
    """MLX MultiHeadAttention `src` -> torch MultiheadAttention `dst` (with zero biases
    where torch's has them)."""
    w = [p[f"{src}.{n}_proj.weight"] for n in ("query", "key", "value")]
    out[f"{dst}.in_proj_weight"] = np.concatenate(w)
    out[f"{dst}.out_proj.weight"] = p[f"{src}.out_proj.weight"]
    if bias:
        out[f"{dst}.in_proj_bias"] = np.zeros(sum(a.shape[0] for a in w), np.float32)
        out[f"{dst}.out_proj.bias"] = np.zeros(w[0].shape[0], np.float32)


def _copy(p, src, dst, out, names=("weight", "bias")):
    for n in names:
        out[f"{dst}.{n}"] = p[f"{src}.{n}"]


def _torch_encoder(p, src, dst, layers, out, bias=True):
    for i in range(layers):
        s, d = f"{src}.layers.{i}", f"{dst}.layers.{i}"
        _torch_mha(p, f"{s}.attention", f"{d}.self_attn", out, bias)
        for a, b in (("ln1", "norm1"), ("ln2", "norm2"), ("linear1", "linear1"),
                     ("linear2", "linear2")):
            _copy(p, f"{s}.{a}", f"{d}.{b}", out)
    _copy(p, f"{src}.ln", f"{dst}.norm", out)


def _torch_decoder(p, src, dst, layers, out):
    for i in range(layers):
        s, d = f"{src}.layers.{i}", f"{dst}.layers.{i}"
        _torch_mha(p, f"{s}.self_attention", f"{d}.self_attn", out, True)
        _torch_mha(p, f"{s}.cross_attention", f"{d}.multihead_attn", out, True)
        for a, b in (("ln1", "norm1"), ("ln2", "norm2"), ("ln3", "norm3"),
                     ("linear1", "linear1"), ("linear2", "linear2")):
            _copy(p, f"{s}.{a}", f"{d}.{b}", out)
    _copy(p, f"{src}.ln", f"{dst}.norm", out)


def _torch_state(model, cfg, p):
    """The torch state dict (numpy) holding the MLX parameters `p`."""
    out = {}
    L = cfg["L"]
    if model == "transformer":
        _torch_encoder(p, "encoder", "encoder", L, out)
        _torch_decoder(p, "decoder", "decoder", L, out)
    elif model == "cnn":
        for c in ("conv1", "conv2"):  # (O, kh, kw, I) -> (O, I, kh, kw)
            out[f"{c}.weight"] = p[f"{c}.weight"].transpose(0, 3, 1, 2)
            out[f"{c}.bias"] = p[f"{c}.bias"]
        _copy(p, "fc", "fc", out)
    elif model == "mlp":
        for n in ("l1", "l2", "l3"):
            _copy(p, n, n, out)
    elif model == "rnn":
        out["weight_ih_l0"] = p["Wxh"]
        out["weight_hh_l0"] = p["Whh"]
        out["bias_ih_l0"] = p["bias"]
        out["bias_hh_l0"] = np.zeros_like(p["bias"])
    else:
        _copy(p, "tok", "tok", out, ("weight",))
        _copy(p, "pos", "pos", out, ("weight",))
        _torch_encoder(p, "blocks", "blocks", L, out, bias=False)
        _copy(p, "head", "head", out)
    return out


def _mlx_grad_names(model, cfg, grads):
    """torch gradients {torch name: numpy} -> {MLX name: numpy} (gpt)."""
    out = {"tok.weight": grads["tok.weight"], "pos.weight": grads["pos.weight"],
           "head.weight": grads["head.weight"], "head.bias": grads["head.bias"],
           "blocks.ln.weight": grads["blocks.norm.weight"],
           "blocks.ln.bias": grads["blocks.norm.bias"]}
    for i in range(cfg["L"]):
        s, d = f"blocks.layers.{i}", f"blocks.layers.{i}"
        q, k, v = np.split(grads[f"{s}.self_attn.in_proj_weight"], 3)
        out.update({f"{d}.attention.query_proj.weight": q,
                    f"{d}.attention.key_proj.weight": k,
                    f"{d}.attention.value_proj.weight": v,
                    f"{d}.attention.out_proj.weight": grads[f"{s}.self_attn.out_proj.weight"]})
        for a, b in (("ln1", "norm1"), ("ln2", "norm2"), ("linear1", "linear1"),
                     ("linear2", "linear2")):
            for n in ("weight", "bias"):
                out[f"{d}.{a}.{n}"] = grads[f"{s}.{b}.{n}"]
    return out


def torch_models(torch):
    tnn = torch.nn

    class CNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = tnn.Conv2d(16, 32, 3, padding=1)
            self.relu = tnn.ReLU()
            self.pool = tnn.MaxPool2d(2)
            self.fc = tnn.Linear(8192, 1024)

        def forward(self, x):
            # NHWC -> NCHW view: a channels_last tensor, no copy
            x = x.permute(0, 3, 1, 2)
            x = self.pool(self.relu(self.conv1(x)))
            x = self.pool(self.relu(self.conv2(x)))
            # back to NHWC before flattening, as the MLX model flattens
            return self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))

    class MLP(tnn.Module):
        def __init__(self, d):
            super().__init__()
            self.l1 = tnn.Linear(4 * d, 4 * d)
            self.l2 = tnn.Linear(4 * d, 4 * d)
            self.l3 = tnn.Linear(4 * d, d)

        def forward(self, x):
            return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))

    class RNN(tnn.Module):
        def __init__(self, d):
            super().__init__()
            self.rnn = tnn.RNN(d, 2 * d, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    class GPT(tnn.Module):
        def __init__(self, context, d, heads, layers):
            super().__init__()
            self.tok = tnn.Embedding(VOCAB, d)
            self.pos = tnn.Embedding(context, d)
            layer = tnn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0,
                                                batch_first=True, norm_first=True)
            self.blocks = tnn.TransformerEncoder(layer, layers, norm=tnn.LayerNorm(d),
                                                 enable_nested_tensor=False)
            for block in self.blocks.layers:
                # bias-free attention projections, as MLX's MultiHeadAttention
                block.self_attn = tnn.MultiheadAttention(d, heads, bias=False,
                                                         batch_first=True)
            self.head = tnn.Linear(d, VOCAB)

        def forward(self, idx, mask):
            pos = torch.arange(idx.shape[1], device=idx.device)
            return self.head(self.blocks(self.tok(idx) + self.pos(pos), mask=mask))

    return {
        "transformer": lambda c: tnn.Transformer(
            c["D"], c["H"], c["L"], c["L"], 4 * c["D"], dropout=0.0, batch_first=True,
            norm_first=True),
        "cnn": lambda c: CNN(),
        "mlp": lambda c: MLP(c["D"]),
        "rnn": lambda c: RNN(c["D"]),
        "gpt": lambda c: GPT(c["S"], c["D"], c["H"], c["L"]),
    }


def torch_case(model, cfg, device, params, seed=0):
    import torch
    import torch.nn.functional as F
    dev = "cuda" if device == "gpu" else "cpu"
    with warnings.catch_warnings():  # nn.Transformer: no nested tensors with norm_first
        warnings.simplefilter("ignore", UserWarning)
        net = torch_models(torch)[model](cfg)
    state = _torch_state(model, cfg, params)
    if model == "rnn":
        state = {f"rnn.{k}": v for k, v in state.items()}
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                         for k, v in state.items()}, strict=True)
    net.to(dev)
    data = {k: torch.from_numpy(v).to(dev) for k, v in make_inputs(model, cfg, seed).items()}
    wait = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def mask(n):
        return torch.from_numpy(causal_mask(n)).to(dev)

    if model == "transformer":
        src, tgt = data["src"], data["tgt"]
        src_mask, tgt_mask = mask(cfg["S"]), mask(cfg["T"])

        def fwd():
            return net(src, tgt, src_mask=src_mask, tgt_mask=tgt_mask)
    elif model == "gpt":
        x, y, causal = data["x"].long(), data["y"].long(), mask(cfg["S"])

        def fwd():
            return net(x, causal)
    else:
        x = data["x"]

        def fwd():
            return net(x)

    def forward():
        with torch.no_grad():
            return fwd().cpu().numpy()

    if model != "gpt":
        net.eval()

        def step():
            with torch.no_grad():
                fwd()
            wait()
        return Case(step, wait, forward)

    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.01)

    def loss():
        return F.cross_entropy(fwd().reshape(-1, VOCAB), y.reshape(-1))

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()
        wait()

    def loss_and_grads():
        net.zero_grad(set_to_none=True)
        value = loss()
        value.backward()
        grads = {k: p.grad.cpu().numpy() for k, p in net.named_parameters()
                 if p.grad is not None}
        return value.item(), _mlx_grad_names(model, cfg, grads)

    return Case(step, wait, forward, loss_and_grads)


def make_case(framework, model, cfg, device, params, seed=0):
    if framework == "torch":
        return torch_case(model, cfg, device, params, seed)
    return mlx_case(framework, model, cfg, device, params, seed)


# --- the run -------------------------------------------------------------------------

def _have_mlx(device):
    try:
        import mlx.core as mlx
    except ImportError:
        return False
    return device == "cpu" or mlx.is_available(mlx.gpu)


def time_cases(cases, warmup, iters, rounds=1):
    """{framework: median ms per step}. Each framework runs `warmup` steps, then its
    timed steps in a block; with `rounds` > 1 the timed steps are split into that many
    blocks per framework, taken in turn (each after one more warm-up step), so that load
    that comes and goes on a shared machine hits the frameworks alike."""
    for c in cases.values():
        median_time(c.step, c.sync, 1, 1, warmup)
    times = {fw: [] for fw in cases}
    rounds = max(1, min(rounds, iters))
    for r in range(rounds):
        share = iters // rounds + (r < iters % rounds)
        for fw, c in cases.items():
            if r:
                median_time(c.step, c.sync, 1, 1, 0)  # the caches after the others ran
            times[fw] += [median_time(c.step, c.sync, 1, 1, 0) for _ in range(share)]
    return {fw: 1e3 * statistics.median(t) for fw, t in times.items()}


def run(models, sizes, frameworks, device="cpu", warmup=None, iters=None, rounds=1,
        log=print):
    """[{model, size, framework: ms per step, ...}] for every model at every size."""
    rows = []
    for size in sizes:
        cfg = SIZES[size]
        w, n = STEPS[size]
        w = w if warmup is None else warmup
        n = n if iters is None else iters
        for model in models:
            if size == "large" and model not in LARGE_MODELS:
                continue
            params = init_params(model, cfg)
            cases = {fw: make_case(fw, model, cfg, device, params) for fw in frameworks}
            row = {"model": model, "size": size, **time_cases(cases, w, n, rounds)}
            del cases
            gc.collect()
            rows.append(row)
            log(format_row(row, frameworks))
    return rows


def _ratio(row, a, b):
    return row[a] / row[b] if a in row and b in row else None


def _ms(v):
    """Three significant figures, without exponents."""
    return f"{v:.{max(0, 2 - int(np.floor(np.log10(v))))}f}" if v > 0 else "0"


def format_row(row, frameworks):
    cells = [row["model"], row["size"]]
    cells += [_ms(row[fw]) for fw in FRAMEWORKS if fw in frameworks]
    for other in ("mlx", "torch"):
        if "ember" in frameworks and other in frameworks:
            r = _ratio(row, "ember", other)
            cells.append(f"{r:.2f}x")
    return "| " + " | ".join(cells) + " |"


def header(frameworks):
    cols = ["model", "size"] + [f"{fw} ms" for fw in FRAMEWORKS if fw in frameworks]
    cols += [f"ember / {o}" for o in ("mlx", "torch") if "ember" in frameworks and o in frameworks]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def _csv(text, allowed):
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise SystemExit(f"unknown: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--sizes", default="small,default")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--warmup", type=int, default=None,
                   help="warm-up steps (default per size: " +
                   ", ".join(f"{k} {v[0]}" for k, v in STEPS.items()) + ")")
    p.add_argument("--iters", type=int, default=None,
                   help="timed steps (default per size: " +
                   ", ".join(f"{k} {v[1]}" for k, v in STEPS.items()) + ")")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (Ember and torch share them; MLX keeps its own)")
    p.add_argument("--rounds", type=int, default=1,
                   help="split the timed steps into this many blocks per framework, taken in "
                   "turn (default 1: each framework's steps in one block)")
    p.add_argument("--json", default=None, help="write the results to this file")
    args = p.parse_args(argv)
    if args.device == "gpu":
        # load torch's own cuDNN before upstream mlx can load the one it bundles
        import torch
        torch.backends.cudnn.is_acceptable(torch.empty(1, device="cuda"))
    models = _csv(args.models, MODELS)
    sizes = _csv(args.sizes, list(SIZES))
    frameworks = _csv(args.frameworks, FRAMEWORKS)
    if "mlx" in frameworks and not _have_mlx(args.device):
        print(f"upstream mlx is not available on {args.device}: skipped", file=sys.stderr)
        frameworks.remove("mlx")

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = "/".join("per size" if v is None else str(v) for v in (args.warmup, args.iters))
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"warmup/iters={steps} "
          f"rounds={args.rounds}; ms per step (median)")
    print(header(frameworks), flush=True)
    rows = run(models, sizes, frameworks, args.device, args.warmup, args.iters,
               args.rounds, log=lambda s: print(s, flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "machine": platform.node(),
                       "warmup": args.warmup, "iters": args.iters, "steps": STEPS,
                       "rounds": args.rounds,
                       "sizes": {s: SIZES[s] for s in sizes}, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
