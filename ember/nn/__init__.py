"""ember.nn: MLX's neural-network layer (`mlx.nn`) on Ember arrays."""

from ember.nn import init, losses  # noqa: F401
from ember.nn.layers import *  # noqa: F401,F403
from ember.nn.utils import average_gradients, checkpoint, value_and_grad  # noqa: F401
