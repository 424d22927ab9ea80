"""A compiled train step shared by the compile tests: the nano-GPT seed example."""

from functools import partial

import numpy as np

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from ember.utils import tree_flatten
from examples.seed import nano_gpt_step as gpt


def gpt_train(compiled, dims, tokens_shape, steps, dropout):
    """(losses, final parameters as numpy, step) of AdamW on the nano-GPT, with model,
    optimizer and random state captured when compiled. dims: (vocab, context, width,
    heads, layers)."""
    mx.random.seed(0)
    model = gpt.GPT(*dims, dropout)
    tokens = mx.random.randint(0, dims[0], tokens_shape)
    x, y = tokens[:, :-1], tokens[:, 1:]
    opt = optim.AdamW(learning_rate=3e-3, weight_decay=0.1)
    loss_and_grad = nn.value_and_grad(model, gpt.loss_fn)
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
