"""The seed examples: classic MLX programs that run on Ember with only their imports changed."""
