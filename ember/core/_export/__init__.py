"""Exported functions: Ember's file format (`codec.py`) and the shape rules of shapeless
imports (`shapes.py`)."""
