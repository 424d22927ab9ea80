"""placeholder"""

__all__ = []
