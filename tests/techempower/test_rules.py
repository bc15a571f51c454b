"""The verification rules themselves (examples/techempower/verify.py) on wrong answers:
each must find the problem. No database needed.
"""

from __future__ import annotations

import json

from examples.techempower import verify

GOOD_HEADERS = {"Server": "x", "Date": "Sat, 21 Nov 2026 09:00:00 GMT",
                "Content-Type": "application/json", "Content-Length": "27"}


def test_good_answers_pass() -> None:
    assert verify.check_headers(GOOD_HEADERS, "json") == []
    assert verify.check_json(b'{"message":"Hello, World!"}') == []
    assert verify.check_worlds(json.dumps([{"id": 1, "randomNumber": 10_000}]).encode(), 1) == []
    assert verify.check_fortunes(verify.FORTUNES_PAGE.encode()) == []


def test_missing_or_wrong_headers_are_found() -> None:
    no_date = {k: v for k, v in GOOD_HEADERS.items() if k != "Date"}
    assert verify.check_headers(no_date, "json") == ["no date header"]
    assert verify.check_headers(GOOD_HEADERS, "html") == [
        "Content-Type 'application/json' is not html"]
    bad_date = {**GOOD_HEADERS, "Date": "yesterday"}
    assert verify.check_headers(bad_date, "json") == ["Date 'yesterday' is not an HTTP-date"]
    no_size = {k: v for k, v in GOOD_HEADERS.items() if k != "Content-Length"}
    assert verify.check_headers(no_size, "json") == [
        "neither Content-Length nor Transfer-Encoding"]


def test_wrong_worlds_are_found() -> None:
    assert verify.check_single_world(b'[{"id": 1, "randomNumber": 2}]')  # a list, not one
    assert verify.check_worlds(b'[{"id": 1, "randomNumber": 2}]', 2)  # too few
    assert verify.check_worlds(b'[{"id": 0, "randomNumber": 2}]', 1)  # id out of range
    assert verify.check_worlds(b'[{"id": "1", "randomNumber": 2}]', 1)  # not an integer
    assert verify.check_worlds(b'[{"id": 1, "randomnumber": 2}]', 1)  # wrong key
    assert verify.check_worlds(b"", 1)


def test_an_unescaped_or_unsorted_fortunes_page_is_found() -> None:
    unescaped = verify.FORTUNES_PAGE.replace("&lt;script&gt;", "<script>").replace(
        "&lt;/script&gt;", "</script>")
    assert verify.check_fortunes(unescaped.encode())
    rows = verify.FORTUNES_PAGE.split("<tr>")
    swapped = "<tr>".join([rows[0], rows[1], rows[3], rows[2], *rows[4:]])
    assert verify.check_fortunes(swapped.encode())
    without_added = verify.FORTUNES_PAGE.replace(
        "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>", "")
    assert verify.check_fortunes(without_added.encode())


def test_the_same_page_escaped_otherwise_passes() -> None:
    # Jinja2 writes &#34; and &#39; where the TFB page has &quot; and &apos;
    page = verify.FORTUNES_PAGE.replace("&quot;", "&#34;").replace("&apos;", "&#39;")
    assert verify.check_fortunes(("\n  " + page.replace("<tr>", "\n<tr>")).encode()) == []
