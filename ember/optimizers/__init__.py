"""ember.optimizers: MLX's optimizers and learning-rate schedules (`mlx.optimizers`)."""

from ember.optimizers.optimizers import *  # noqa: F401,F403
from ember.optimizers.schedulers import *  # noqa: F401,F403
