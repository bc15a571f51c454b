"""A module that cannot be imported: its dependency does not exist."""

import dartle_test_missing_dependency  # type: ignore[import-not-found]  # noqa: F401

app = None
