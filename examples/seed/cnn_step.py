"""One training step of a small CNN classifier on NHWC images.

Conv2d -> ReLU -> MaxPool2d, twice, then a Linear head; cross-entropy loss; SGD with
momentum. Prints the loss before and after the step.
"""

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.relu = nn.ReLU()
        self.head = nn.Linear(2 * width * 4 * 4, num_classes)

    def __call__(self, x):
        x = self.pool(self.relu(self.conv1(x)))  # (B, 8, 8, width)
        x = self.pool(self.relu(self.conv2(x)))  # (B, 4, 4, 2 * width)
        x = x.reshape(x.shape[0], -1)
        return self.head(x)


def loss_fn(model, images, labels):
    return nn.losses.cross_entropy(model(images), labels, reduction="mean")


def main(batch_size=8, num_classes=10, lr=0.1, seed=0):
    mx.random.seed(seed)
    images = mx.random.uniform(shape=(batch_size, 16, 16, 1))
    labels = mx.random.randint(0, num_classes, (batch_size,))

    model = SmallCNN(in_channels=1, num_classes=num_classes)
    mx.eval(model.parameters())
    optimizer = optim.SGD(learning_rate=lr, momentum=0.9)
    loss_and_grad = nn.value_and_grad(model, loss_fn)

    loss, grads = loss_and_grad(model, images, labels)
    optimizer.update(model, grads)
    mx.eval(model.parameters(), optimizer.state)
    after = loss_fn(model, images, labels)
    losses = [loss.item(), after.item()]
    print(f"loss before step {losses[0]:.6f}")
    print(f"loss after step  {losses[1]:.6f}")
    return losses


if __name__ == "__main__":
    main()
