"""--reload: watch files with watchfiles (native events) and tell the supervisor.

The watcher runs in a thread of the supervisor; on a change it calls `on_change` with the
changed paths, and the supervisor restarts the workers the way SIGHUP does (a new worker
serves before an old one stops), so an app that no longer imports leaves the old workers
serving, its error on screen, until the next change.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import Any

logger = logging.getLogger("dartle.error")

DEFAULT_INCLUDE = ("*.py",)
# Editor swap and backup files, hidden files and directories, bytecode.
DEFAULT_EXCLUDE = (".*", "*.py[cod]", "*.sw?", "*~", "#*#")
IGNORED_DIRS = frozenset({
    "__pycache__", ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "node_modules",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", "site-packages",
})


class ReloadFilter:
    """Which changed paths count: included by name or path glob, and not excluded.

    A pattern without '/' is matched against the file name (and, to exclude, against each
    directory name on the way too); one with '/' against the path relative to the watched
    directory. Exclusion wins.
    """

    def __init__(self, roots: Sequence[str], include: Sequence[str], exclude: Sequence[str]) -> None:
        self.roots = [PurePath(root) for root in roots]
        self.include = list(include)
        self.exclude = list(exclude)

    def _relative(self, path: PurePath) -> PurePath:
        for root in self.roots:
            try:
                return path.relative_to(root)
            except ValueError:
                continue
        return path

    @staticmethod
    def _matches(rel: PurePath, pattern: str, names: Sequence[str]) -> bool:
        if "/" in pattern:
            return fnmatch.fnmatch(rel.as_posix(), pattern.lstrip("/"))
        return any(fnmatch.fnmatch(name, pattern) for name in names)

    def __call__(self, change: Any, path: str) -> bool:
        rel = self._relative(PurePath(path))
        parts = rel.parts
        if not parts or any(part in IGNORED_DIRS for part in parts[:-1]):
            return False
        if any(self._matches(rel, pattern, parts) for pattern in self.exclude):
            return False
        return any(self._matches(rel, pattern, parts[-1:]) for pattern in self.include)


class Reloader:
    """A thread that watches `dirs` and reports each batch of relevant changes."""

    def __init__(
        self,
        dirs: Sequence[str],
        include: Sequence[str],
        exclude: Sequence[str],
        on_change: Callable[[list[str]], None],
    ) -> None:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            raise ValueError("--reload needs the watchfiles package: pip install watchfiles") from None
        self.dirs = [os.path.abspath(d) for d in dirs]
        missing = [d for d in self.dirs if not os.path.isdir(d)]
        if missing:
            raise ValueError(f"cannot watch {', '.join(missing)}: not a directory")
        self.filter = ReloadFilter(
            self.dirs, [*DEFAULT_INCLUDE, *include], [*DEFAULT_EXCLUDE, *exclude]
        )
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dartle-reload", daemon=True)

    def start(self) -> None:
        logger.info("Will watch for changes in: %s", ", ".join(self.dirs))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        import watchfiles

        try:
            for changes in watchfiles.watch(
                *self.dirs, watch_filter=self.filter, stop_event=self._stop, raise_interrupt=False
            ):
                self.on_change(sorted({path for _, path in changes}))
        except Exception:  # the watcher must not die silently: say why reload stopped
            logger.exception("The file watcher failed; --reload no longer reloads")
