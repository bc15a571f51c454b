import pytest

from tests.support.httpx_h2 import mend_flow_wait
from tests.support.servers import ROOT

# httpx's HTTP/2 client can stall on an upload it has window for (see httpx_h2.py)
mend_flow_wait()

pytest_plugins: list[str] = []


@pytest.fixture(scope="session")
def project_root():
    return ROOT
