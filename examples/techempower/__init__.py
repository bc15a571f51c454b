"""The TechEmpower Framework Benchmarks test types, in dartle and (to compare) in FastAPI."""
