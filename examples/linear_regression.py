"""Fit w in y = X w + noise with mx.grad and a plain gradient-descent loop."""

import time

import ember.core as mx


def main(num_features=100, num_examples=1000, iters=200, lr=0.1):
    import numpy as np
    rng = np.random.default_rng(0)
    w_star = mx.array(rng.normal(size=(num_features,)).astype("float32"))
    X = mx.array(rng.normal(size=(num_examples, num_features)).astype("float32"))
    eps = mx.array(1e-2 * rng.normal(size=(num_examples,)).astype("float32"))
    y = X @ w_star + eps
    w = mx.array(1e-2 * rng.normal(size=(num_features,)).astype("float32"))

    def loss_fn(w):
        return 0.5 * mx.mean(mx.square(X @ w - y))

    grad_fn = mx.grad(loss_fn)
    print(f"device: {mx.default_device()}")
    tic = time.perf_counter()
    for it in range(iters):
        grad = grad_fn(w)
        w = w - lr * grad
        mx.eval(w)
        if it % 20 == 0 or it == iters - 1:
            print(f"iter {it:4d}  loss {loss_fn(w).item():.5f}")
    toc = time.perf_counter()
    error_norm = mx.sum(mx.square(w - w_star)).item() ** 0.5
    print(f"final loss {loss_fn(w).item():.5f}, |w - w*| = {error_norm:.5f}, "
          f"{1000 * (toc - tic) / iters:.3f} ms/iter")


if __name__ == "__main__":
    main()
