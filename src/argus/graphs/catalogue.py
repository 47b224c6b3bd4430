"""Where question graphs come from: built-in YAML shipped with Argus, and the user's graphs in
``ARGUS_HOME/questions/*.yaml`` (registered with ``argus questions add FILE``).

A running server notices files added, changed or removed in that directory (it looks at most
twice a second), so ``argus questions add`` needs no restart.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

from argus.errors import BadInput, Conflict, NotFound
from argus.graphs.parse import parse_graph
from argus.graphs.spec import GraphSpec, ModelLookup

log = logging.getLogger(__name__)

MAX_GRAPH_BYTES = 64 * 1024
RESCAN_SECONDS = 0.5


def load_builtins() -> dict[str, GraphSpec]:
    """The graphs in ``argus/questions/*.yaml`` (package data)."""
    out: dict[str, GraphSpec] = {}
    folder = resources.files("argus") / "questions"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        spec = parse_graph(entry.read_text(encoding="utf-8"), origin=f"built-in {entry.name}")
        out[spec.name] = spec
    return out


def read_graph_file(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_GRAPH_BYTES:
            raise BadInput(f"{path} is {size:,} bytes; a graph file is at most {MAX_GRAPH_BYTES:,}")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text") from exc
    except FileNotFoundError as exc:
        raise NotFound(f"{path} does not exist") from exc
    except OSError as exc:
        raise BadInput(f"{path} cannot be read: {exc.strerror}") from exc


class Catalogue:
    def __init__(self, directory: Path, lookup: ModelLookup) -> None:
        self.directory = directory
        self.lookup = lookup
        self.builtins = load_builtins()
        self.problems: dict[str, str] = {}
        """File name → why it was not loaded (a file edited by hand into a broken state)."""
        self._user: dict[str, GraphSpec] = {}
        self._paths: dict[str, Path] = {}
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._checked = 0.0

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return ()
        sig = []
        for entry in entries:
            if entry.name.endswith(".yaml") and entry.is_file():
                stat = entry.stat()
                sig.append((entry.name, stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(sig))

    def user(self, force: bool = False) -> dict[str, GraphSpec]:
        """The user's graphs, re-read when the directory changed."""
        now = time.monotonic()
        if not force and self._signature is not None and now - self._checked < RESCAN_SECONDS:
            return self._user
        self._checked = now
        signature = self._scan()
        if signature == self._signature:
            return self._user
        graphs: dict[str, GraphSpec] = {}
        paths: dict[str, Path] = {}
        problems: dict[str, str] = {}
        for name, _, _ in signature:
            path = self.directory / name
            try:
                spec = parse_graph(read_graph_file(path), origin=name, lookup=self.lookup)
            except (BadInput, NotFound) as exc:
                problems[name] = exc.message
                log.warning("question file %s is not loaded: %s", path, exc.message)
                continue
            except Exception as exc:  # one file nobody foresaw must not hide the good ones
                problems[name] = f"cannot be parsed ({type(exc).__name__})"
                log.exception("question file %s is not loaded", path)
                continue
            if spec.name in self.builtins or spec.name in graphs:
                problems[name] = f"question {spec.name!r} is defined more than once"
                log.warning("question file %s is not loaded: %s", path, problems[name])
                continue
            graphs[spec.name] = spec
            paths[spec.name] = path
        self._user, self._paths, self.problems = graphs, paths, problems
        self._signature = signature
        return graphs

    def get(self, name: str) -> GraphSpec | None:
        return self.builtins.get(name) or self.user().get(name)

    def path_of(self, name: str) -> Path | None:
        self.user()
        return self._paths.get(name)

    def validate(self, path: Path) -> GraphSpec:
        """Parse FILE and check it against the registry, as registration does."""
        return parse_graph(
            read_graph_file(path), origin=str(path), lookup=self.lookup, check_models=True
        )

    def add(self, path: Path, replace: bool = False) -> tuple[GraphSpec, bool]:
        """Validate FILE and copy it into the questions directory; returns (graph, created).

        Identical content registered again is not an error (and not a change)."""
        spec = self.validate(path)
        if spec.name in self.builtins:
            raise Conflict(f"{spec.name!r} is a built-in question; give the graph another name")
        if self.lookup(spec.name) is not None:
            raise Conflict(
                f"{spec.name!r} is the name of a model (asked as a question of its own); "
                "give the graph another name"
            )
        target = self.directory / f"{spec.name}.yaml"
        existing = self.path_of(spec.name)
        if existing is not None:
            if existing.read_text(encoding="utf-8") == spec.text:
                return spec, False
            if not replace:
                raise Conflict(
                    f"question {spec.name!r} is already registered ({existing}); "
                    "use --replace to change it"
                )
            target = existing
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(spec.text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.user(force=True)
        return spec, True

    def remove(self, name: str) -> Path:
        if name in self.builtins:
            raise Conflict(f"{name!r} is a built-in question and cannot be removed")
        path = self.path_of(name)
        if path is None:
            raise NotFound(f"no user question named {name!r}")
        path.unlink()
        self.user(force=True)
        return path
