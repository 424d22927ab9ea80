"""Train steps shared by the compile tests, compiled or not: a generic loop, and the
nano-GPT seed example through it."""

from functools import partial

import numpy as np

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
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
