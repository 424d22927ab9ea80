"""Ember: MLX's array framework for Python, on NVIDIA GPUs and CPUs."""

__version__ = "0.1.0"
