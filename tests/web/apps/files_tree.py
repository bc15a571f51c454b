"""The directory tree the file tests serve, built fresh in a temporary directory."""

from __future__ import annotations

import os
import random
from pathlib import Path

HELLO = b"hello, world\n"
SECRET = b"top secret: must never be served\n"
INDEX = b"<!doctype html><title>site</title><p>site index</p>\n"
NOT_FOUND_PAGE = b"<!doctype html><title>missing</title><p>custom 404 page</p>\n"
# Binary, larger than several FileResponse chunks, not a multiple of the chunk size.
BIG = random.Random(7).randbytes(300_001)
ALPHABET = bytes(range(256)) * 4  # 1024 bytes whose offsets are easy to check


def build(root: Path) -> Path:
    """Make the tree under `root`; returns the directory to serve (`root/public`)."""
    public = root / "public"
    (public / "site" / "nested").mkdir(parents=True)
    (public / "hello.txt").write_bytes(HELLO)
    (public / "alphabet.bin").write_bytes(ALPHABET)
    (public / "big.bin").write_bytes(BIG)
    (public / "empty.txt").write_bytes(b"")
    (public / "data.json").write_bytes(b'{"a": 1}')
    (public / "site" / "index.html").write_bytes(INDEX)
    (public / "site" / "nested" / "page.html").write_bytes(b"<p>nested</p>")
    (public / "404.html").write_bytes(NOT_FOUND_PAGE)
    (public / "%2e%2e").write_bytes(b"a file really named %2e%2e\n")
    (root / "secret.txt").write_bytes(SECRET)
    (root / "private").mkdir()
    (root / "private" / "key.txt").write_bytes(SECRET)
    # Links: one that stays inside, two that lead out.
    os.symlink("hello.txt", public / "inside-link.txt")
    os.symlink(root / "secret.txt", public / "outside-link.txt")
    os.symlink(root / "private", public / "outside-dir")
    os.mkfifo(public / "pipe")
    return public
