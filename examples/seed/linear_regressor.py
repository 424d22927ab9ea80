"""Linear regression with nn.Linear, trained by AdamW through nn.value_and_grad.

The data is synthetic: y = X w* + b* + noise. The loss printed every few steps falls.
"""

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim


class LinearRegressor(nn.Module):
    def __init__(self, num_features: int):
        super().__init__()
        self.linear = nn.Linear(num_features, 1)

    def __call__(self, x):
        return self.linear(x).squeeze(-1)


def loss_fn(model, X, y):
    return nn.losses.mse_loss(model(X), y, reduction="mean")


def main(num_features=16, num_examples=256, steps=60, lr=0.05, seed=0, log_every=10):
    mx.random.seed(seed)
    w_star = mx.random.uniform(-1.0, 1.0, (num_features,))
    b_star = mx.random.uniform(-1.0, 1.0, ())
    X = mx.random.uniform(-1.0, 1.0, (num_examples, num_features))
    noise = 1e-2 * mx.random.uniform(-1.0, 1.0, (num_examples,))
    y = X @ w_star + b_star + noise

    model = LinearRegressor(num_features)
    mx.eval(model.parameters())
    optimizer = optim.AdamW(learning_rate=lr, weight_decay=1e-4)
    loss_and_grad = nn.value_and_grad(model, loss_fn)

    losses = []
    for step in range(steps):
        loss, grads = loss_and_grad(model, X, y)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state, loss)
        losses.append(loss.item())
        if step % log_every == 0 or step == steps - 1:
            print(f"step {step:3d}  loss {losses[-1]:.6f}")
    return losses


if __name__ == "__main__":
    main()
