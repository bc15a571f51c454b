import pytest

from tests.support.servers import ROOT

pytest_plugins: list[str] = []


@pytest.fixture(scope="session")
def project_root():
    return ROOT
