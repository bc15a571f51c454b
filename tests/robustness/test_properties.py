"""Property-based HTTP/1.1 tests: generated pipelines, cut at random points, over real sockets.

Valid requests must be answered in order with the scope the app saw matching the input
(method, path, raw_path, query, every header in order, the de-chunked body). A subtly
invalid one (mutations.py) must get a 4xx (or 501 for transfer codings) and a
closed connection, and neither it nor anything pipelined behind it may reach the app.
After each test the server must be alive, with no traceback logged and no ASGI violation.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.robustness.conftest import examples
from tests.robustness.conversation import converse
from tests.robustness.mutations import pipelines, split_points
from tests.robustness.strategies import Sent
from tests.server.conftest import Harness


@settings(max_examples=examples(40))
@given(pipeline=pipelines(invalid=False), data=st.data())
def test_valid_pipelines_are_served_as_sent(
    clean: Harness, pipeline: list[Sent], data: st.DataObject
) -> None:
    wire_length = sum(len(sent.wire) for sent in pipeline)
    converse(clean, pipeline, data.draw(split_points(wire_length), label="cuts"))


@settings(max_examples=examples(60))
@given(pipeline=pipelines(invalid=True), data=st.data())
def test_invalid_requests_are_refused_and_never_delivered(
    clean: Harness, pipeline: list[Sent], data: st.DataObject
) -> None:
    wire_length = sum(len(sent.wire) for sent in pipeline)
    converse(clean, pipeline, data.draw(split_points(wire_length), label="cuts"))
