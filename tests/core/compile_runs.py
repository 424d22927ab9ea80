"""Train steps shared by the compile tests, compiled or not: a generic loop, and the
nano-GPT seed example through it; and the traced tape of a compiled function with its
steps run one by one (the tests of a tape's rewrites)."""

from functools import partial

import numpy as np
import torch

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from ember.core._backend.kernels import KERNELS
from ember.core.transforms import compile as C
from ember.utils import tree_flatten
from examples.seed import nano_gpt_step as gpt


def train(model, opt, loss_fn, x, y, steps, compiled):
    """(losses, final parameters as numpy, step) of `steps` steps of `opt` on
    `loss_fn(model, x, y)`, with model, optimizer and random state captured when
    compiled."""
    loss_and_grad = nn.value_and_grad(model, loss_fn)
    state = [model.state, opt.state, mx.random.state]

    def step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss

    if compiled:
        step = partial(mx.compile, inputs=state, outputs=state)(step)
    losses = []
    for _ in range(steps):
        loss = step(x, y)
        mx.eval(loss, state)
        losses.append(loss.item())
    return (np.array(losses), {k: np.array(v) for k, v in tree_flatten(model.parameters())},
            step)


def gpt_train(compiled, dims, tokens_shape, steps, dropout):
    """`train` of AdamW on the nano-GPT. dims: (vocab, context, width, heads, layers)."""
    mx.random.seed(0)
    model = gpt.GPT(*dims, dropout)
    tokens = mx.random.randint(0, dims[0], tokens_shape)
    x, y = tokens[:, :-1], tokens[:, 1:]
    opt = optim.AdamW(learning_rate=3e-3, weight_decay=0.1)
    return train(model, opt, gpt.loss_fn, x, y, steps, compiled)


def traced(fun, *args):
    """(the last tape of `fun` compiled and called on args, fun(*args) uncompiled)."""
    cf = mx.compile(fun)
    want = fun(*args)
    cf(*args)
    return C.tapes(cf)[-1], want


def run_steps(tape, steps, args):
    """The tape's outputs with `steps` run one by one through the kernel table."""
    vals = {s: a._data for s, a in zip(tape.inputs, args)}
    vals.update({s: c[0] for s, c in tape.consts.items()})
    with torch.inference_mode():
        for st in steps:
            r = KERNELS[st.prim.__class__](st.prim, *[vals[i] for i in st.ins])
            for o, t in zip(st.outs, r if st.multi else (r,)):
                vals[o] = t
    return [vals[o] for o in tape.outs]
