"""Train a character-level GPT on the source code of Python's own standard library.

Every machine with Python has the corpus, so nothing is downloaded. The model is token and
learned position embeddings, a stack of pre-norm `nn.TransformerEncoderLayer`s under a
causal mask, a final LayerNorm and a linear head, trained with AdamW (linear warmup, then
cosine decay). The run shows a progress bar (loss, tokens/s), evaluates a held-out 10% of
the corpus (4 times per run), saves a checkpoint atomically at each evaluation and at the
end, and prints a generated sample.

    python -m examples.char_gpt                     # small default: ~1 minute on 2 CPU cores
    python -m examples.char_gpt --preset large      # a bigger model and corpus, for a GPU
    python -m examples.char_gpt --resume --steps 1200   # continue the saved run

Explicit flags override the preset. `--resume` takes the model shape and the vocabulary
from the checkpoint in `--out` and trains on until `--steps` (a total, not an increment);
the learning-rate schedule spans `--steps`, and batch `i` is the same whether or not the run
was interrupted before it.

Checkpoint layout (`--out`, default `.demo/`): `ckpt-<step>/model.safetensors` (the weights,
`model.load_weights` reads it), `ckpt-<step>/optimizer.safetensors` (the optimizer state)
and `checkpoint.json` (step, model config, vocabulary, losses, and which `ckpt-*` folder is
current). A save writes a new folder under a temporary name, renames it, then replaces
`checkpoint.json` in one `os.replace`: a crash at any point leaves the previous checkpoint
whole.
"""

import argparse
import json
import os
import secrets
import shutil
import sys
import sysconfig
import time
from functools import partial

import numpy as np

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from ember.utils import tree_flatten, tree_unflatten

# flags a preset fills in when they are not given on the command line
PRESETS = {
    # about a minute on 2 CPU cores; the loss falls from ~4.6 to ~1.6
    "small": dict(steps=500, batch=32, context=64, dims=128, heads=4, layers=2, lr=4e-3,
                  corpus_mb=2.0),
    # a GPU run: 11M parameters, 256 characters of context, up to 20M chars of text; ~2
    # minutes on an H100, val loss ~0.93 (longer overfits a 10M-char stdlib)
    "large": dict(steps=3000, batch=64, context=256, dims=384, heads=6, layers=6, lr=1e-3,
                  corpus_mb=20.0),
}
UNK = "\ufffd"  # one token stands for every non-ASCII character
SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages"}
CHECKPOINT = "checkpoint.json"


# ---------------------------------------------------------------------------- data

def read_corpus(max_chars):
    """The .py files of the standard library, in sorted path order, up to `max_chars`."""
    parts, total = [], 0
    for dirpath, dirnames, filenames in os.walk(sysconfig.get_paths()["stdlib"]):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(f for f in filenames if f.endswith(".py")):
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
            total += len(parts[-1])
            if total >= max_chars:
                return "".join(parts)[:max_chars]
    return "".join(parts)


def build_vocab(text):
    """The ASCII characters of `text`, sorted, then UNK."""
    return "".join(sorted(c for c in set(text) if ord(c) < 128)) + UNK


def encode(text, vocab):
    table = np.full(129, len(vocab) - 1, np.int32)  # slot 128: any non-ASCII code point
    for i, c in enumerate(vocab[:-1]):
        table[ord(c)] = i
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    return table[np.minimum(codes, 128)]


def decode(ids, vocab):
    return "".join(vocab[i] for i in ids)


def get_batch(data, batch, context, rng):
    """`batch` random windows of `data`: inputs and the same windows shifted by one."""
    starts = rng.integers(0, len(data) - context - 1, size=batch)
    windows = data[starts[:, None] + np.arange(context + 1)]
    return mx.array(windows[:, :-1]), mx.array(windows[:, 1:])


# ---------------------------------------------------------------------------- model

class CharGPT(nn.Module):
    def __init__(self, vocab_size, context, dims, heads, layers):
        super().__init__()
        self.context = context
        self.token_embedding = nn.Embedding(vocab_size, dims)
        self.position_embedding = nn.Embedding(context, dims)
        # pre-norm layers plus the final LayerNorm
        self.transformer = nn.TransformerEncoder(layers, dims, heads, 4 * dims,
                                                 activation=nn.gelu, norm_first=True)
        self.head = nn.Linear(dims, vocab_size)

    def __call__(self, x):
        n = x.shape[1]
        h = self.token_embedding(x) + self.position_embedding.weight[:n]
        mask = nn.MultiHeadAttention.create_additive_causal_mask(n, h.dtype)
        return self.head(self.transformer(h, mask))


def loss_fn(model, x, y):
    return nn.losses.cross_entropy(model(x), y, reduction="mean")


def evaluate(model, batches):
    return sum(loss_fn(model, x, y).item() for x, y in batches) / len(batches)


def generate(model, prompt_ids, length, temperature):
    """`length` token ids sampled after `prompt_ids` (recomputing the whole window per token:
    simple, and cheap at these sizes)."""
    ids = [int(i) for i in prompt_ids]
    for _ in range(length):
        logits = model(mx.array([ids[-model.context:]]))[:, -1, :]
        if temperature == 0:
            token = mx.argmax(logits, axis=-1)
        else:
            token = mx.random.categorical(logits * (1 / temperature))
        ids.append(token.item())
    return ids[len(prompt_ids):]


# ---------------------------------------------------------------------------- checkpoints

def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(folder):
    # not tempfile.mkstemp/mkdtemp: their private 0600/0700 modes would outlive the rename
    return os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _write_json_atomic(path, obj):
    tmp = _temp_name(os.path.dirname(path)) + ".json"
    try:
        with open(tmp, "x") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(out, model, optimizer, meta):
    """Write weights and optimizer state into a fresh folder, then point `checkpoint.json`
    at it; only that last `os.replace` commits, so a failure anywhere keeps the old one."""
    os.makedirs(out, exist_ok=True)
    tmp = _temp_name(out)
    os.mkdir(tmp)
    name = base = f"ckpt-{meta['step']:06d}"
    n = 1
    while os.path.exists(os.path.join(out, name)):  # re-saving a step: never touch the live one
        n += 1
        name = f"{base}.{n}"
    final = os.path.join(out, name)
    try:
        for fname, tree in (("model.safetensors", model.parameters()),
                            ("optimizer.safetensors", optimizer.state)):
            path = os.path.join(tmp, fname)
            mx.save_safetensors(path, dict(tree_flatten(tree)))
            _fsync(path)
        os.replace(tmp, final)
        _write_json_atomic(os.path.join(out, CHECKPOINT), {**meta, "path": name})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    for entry in os.listdir(out):  # superseded checkpoints
        if entry.startswith("ckpt-") and entry != name:
            shutil.rmtree(os.path.join(out, entry), ignore_errors=True)
    return final


def load_checkpoint(out):
    """(meta, path of the weights, optimizer state tree) of the checkpoint in `out`."""
    with open(os.path.join(out, CHECKPOINT)) as f:
        meta = json.load(f)
    folder = os.path.join(out, meta["path"])
    state = tree_unflatten(list(mx.load(os.path.join(folder, "optimizer.safetensors")).items()))
    return meta, os.path.join(folder, "model.safetensors"), state


# ---------------------------------------------------------------------------- progress

class Progress:
    """A one-line progress bar redrawn with \\r on a terminal; elsewhere (logs, pipes) a
    line after the first step and every tenth of the run."""

    def __init__(self, start, total, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start, self.total = start, total
        self.every = max(1, (total - start) // 10)
        self.last_draw = 0.0
        self.mark = (time.perf_counter(), start)  # for tokens/s over the recent window
        self.rate = 0.0

    def update(self, step, loss, tokens_per_step):
        now = time.perf_counter()
        t0, s0 = self.mark
        if now - t0 >= 1.0 or step == self.total or not self.rate:
            self.rate = (step - s0) * tokens_per_step / (now - t0)
            self.mark = (now, step)
        done = step == self.total
        if self.tty and (done or now - self.last_draw >= 0.1):
            self.last_draw = now
            frac = (step - self.start) / max(1, self.total - self.start)
            bar = "#" * round(24 * frac) + "-" * (24 - round(24 * frac))
            self.stream.write(f"\r[{bar}] step {step}/{self.total}  loss {loss:.3f}  "
                              f"{self.rate / 1e3:.1f}k tok/s ")
            self.stream.flush()
        elif not self.tty and (done or step == self.start + 1
                               or (step - self.start) % self.every == 0):
            self.stream.write(f"step {step}/{self.total}  loss {loss:.3f}  "
                              f"{self.rate / 1e3:.1f}k tok/s\n")
            self.stream.flush()

    def message(self, text):
        """Print a line above the bar."""
        if self.tty:
            self.stream.write("\r\033[K")
        print(text, flush=True)

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="default sizes (explicit flags win); 'large' is meant for a GPU")
    p.add_argument("--steps", type=int, help="total optimizer steps")
    p.add_argument("--batch", type=int, help="sequences per step")
    p.add_argument("--context", type=int, help="characters per sequence")
    p.add_argument("--dims", type=int, help="model width")
    p.add_argument("--heads", type=int, help="attention heads")
    p.add_argument("--layers", type=int, help="transformer layers")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--corpus-mb", type=float, help="cap on the corpus, in millions of chars")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, help="warmup steps (default: 10%% of --steps)")
    p.add_argument("--eval-every", type=int, help="steps between val evaluations "
                   "(default: a quarter of the run)")
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--device", choices=["cpu", "gpu"], help="default: Ember's default device")
    p.add_argument("--out", default=".demo", help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-len", type=int, default=300, help="characters to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 samples greedily")
    p.add_argument("--prompt", default="def ")
    p.add_argument("--no-compile", action="store_true", help="run the train step eagerly")
    args = p.parse_args(argv)
    for k, v in PRESETS[args.preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def main(argv=None):
    """Run the demo; returns a summary dict (used by the tests)."""
    args = parse_args(argv)
    if args.device is not None:
        mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    mx.random.seed(args.seed)

    meta = None
    if args.resume:
        if not os.path.exists(os.path.join(args.out, CHECKPOINT)):
            raise SystemExit(f"--resume: no checkpoint in {args.out}")
        meta, weights, opt_state = load_checkpoint(args.out)
        config, vocab = meta["config"], meta["vocab"]
    text = read_corpus(int(args.corpus_mb * 1e6))
    if meta is None:
        vocab = build_vocab(text)
        config = dict(vocab_size=len(vocab), context=args.context, dims=args.dims,
                      heads=args.heads, layers=args.layers)
    data = encode(text, vocab)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    context = config["context"]
    if len(val) <= context + 1:
        raise SystemExit(f"corpus of {len(data)} chars is too small for context {context}")

    model = CharGPT(**config)
    warmup = args.warmup if args.warmup is not None else max(1, args.steps // 10)
    decay = optim.cosine_decay(args.lr, max(1, args.steps - warmup), 0.1 * args.lr)
    schedule = optim.join_schedules([optim.linear_schedule(0.0, args.lr, warmup), decay],
                                    [warmup])
    # bias correction: without it (MLX's default) the first updates are ~3x the learning rate,
    # and a short run stalls on a plateau near a loss of 2.4
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=args.weight_decay,
                            bias_correction=True)
    step = 0
    if meta is not None:
        model.load_weights(weights)
        optimizer.state = opt_state
        step = meta["step"]
    mx.eval(model.parameters())

    n_params = sum(v.size for _, v in tree_flatten(model.parameters()))
    tokens_per_step = args.batch * context
    print(f"device {mx.default_device()}  corpus {len(data) / 1e6:.2f}M chars of stdlib source "
          f"({len(train)} train / {len(val)} val)  vocab {len(vocab)}")
    print(f"model {config['layers']} layers x {config['dims']} dims x {config['heads']} heads, "
          f"{n_params / 1e6:.2f}M params; {tokens_per_step} tokens/step"
          + (f"; resuming at step {step}" if step else ""), flush=True)

    loss_and_grad = nn.value_and_grad(model, loss_fn)

    def train_step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        grads, _ = optim.clip_grad_norm(grads, 1.0)
        optimizer.update(model, grads)
        return loss

    if not args.no_compile:
        state = [model.state, optimizer.state]
        train_step = partial(mx.compile, inputs=state, outputs=state)(train_step)

    # fixed held-out batches, so successive evaluations are comparable
    eval_rng = np.random.default_rng(12345)
    val_batches = [get_batch(val, args.batch, context, eval_rng)
                   for _ in range(args.eval_batches)]
    eval_every = args.eval_every or max(1, args.steps // 4)
    run_args = {k: v for k, v in vars(args).items() if k not in ("resume", "out")}

    def checkpoint(val_loss):
        return save_checkpoint(args.out, model, optimizer, dict(
            step=step, config=config, vocab=vocab, val_loss=val_loss,
            train_loss=losses[-1] if losses else None, args=run_args))

    losses, val_losses = [], []
    bar = Progress(step, args.steps)
    tic = time.perf_counter()
    while step < args.steps:
        # batch `step` depends only on (seed, step): a resumed run sees the same data
        x, y = get_batch(train, args.batch, context, np.random.default_rng((args.seed, step)))
        loss = train_step(x, y)
        mx.eval(loss, model.parameters(), optimizer.state)
        step += 1
        losses.append(loss.item())
        bar.update(step, losses[-1], tokens_per_step)
        if step % eval_every == 0 and step < args.steps:
            val_losses.append((step, evaluate(model, val_batches)))
            checkpoint(val_losses[-1][1])  # so that an interrupted run can --resume
            bar.message(f"step {step}: val loss {val_losses[-1][1]:.3f} (saved)")
    bar.close()
    train_time = time.perf_counter() - tic

    val_losses.append((step, evaluate(model, val_batches)))
    print(f"step {step}: val loss {val_losses[-1][1]:.3f}  "
          f"({train_time:.1f}s for {len(losses)} steps)")
    final = checkpoint(val_losses[-1][1])
    print(f"checkpoint saved to {final}")

    mx.random.seed(args.seed)
    sample = decode(generate(model, encode(args.prompt, vocab), args.sample_len,
                             args.temperature), vocab)
    print(f"--- sample (temperature {args.temperature}) ---\n{args.prompt}{sample}\n---")
    return dict(step=step, losses=losses, val_losses=val_losses, sample=sample,
                checkpoint=final, train_time=train_time)


if __name__ == "__main__":
    main()
