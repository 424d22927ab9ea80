"""Ember's file format for exported functions (see `codec.py`)."""
