"""Reproducible speed comparisons of dartle against the anchor servers (see README.md)."""
