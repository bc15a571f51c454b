"""ASGI apps the benchmark servers load (`benchmarks.apps.<module>:app`)."""
