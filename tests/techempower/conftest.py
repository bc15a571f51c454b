"""A throwaway PostgreSQL with the TechEmpower tables, and the example app served on it.

Skips without PostgreSQL (or asyncpg and jinja2), unless DARTLE_REQUIRE_SERVICES=1, where
that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import ServerProcess, run_server
from tests.support.services import services_required


def _missing(reason: str) -> None:
    if services_required():
        pytest.fail(reason + " and DARTLE_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def database_url() -> Iterator[str]:
    for module in ("asyncpg", "jinja2"):
        try:
            __import__(module)
        except ImportError:
            _missing(f"{module} is not installed (the techempower example needs it)")
    from examples.techempower import postgres

    if postgres.bin_dir() is None:
        _missing("PostgreSQL is not installed (Debian: apt-get install -y postgresql)")
    try:
        with postgres.running() as url:
            yield url
    except postgres.PostgresMissing as exc:
        _missing(str(exc))


@pytest.fixture(scope="package", params=["dartle", "uvicorn"])
def server(request: pytest.FixtureRequest, database_url: str) -> Iterator[ServerProcess]:
    """The dartle app, on the dartle server and on uvicorn."""
    with run_server("examples.techempower.app:app", "--no-access-log", kind=request.param,
                    env={"TFB_DATABASE_URL": database_url}) as running:
        yield running
