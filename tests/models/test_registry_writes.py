"""Registry writes under concurrency, numbers out of range, and the operations that undo:
removing aliases, ending canaries, removing versions (and their files), apps rm/unpin/show."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from argus.db.engine import make_engine, migrate
from argus.errors import BadInput, Conflict, NotFound
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry

FIELDS = {
    "task": "classify",
    "license": "Apache-2.0",
    "source": {"kind": "file"},
    "preprocess": {"resize_shorter": 32, "crop": 32},
}


@pytest.fixture
def registry(db_url: str, tmp_path: Path) -> ModelRegistry:
    engine = make_engine(db_url)
    migrate(engine)
    return ModelRegistry(engine, PackageStore(tmp_path / "packages"))


def add(registry: ModelRegistry, folder: Path, payload: bytes, name: str = "m", **kw: object):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(payload)
    return registry.register(name, folder, FIELDS, actor="test", **kw)  # type: ignore[arg-type]


def test_concurrent_alias_canary_and_promote_moves_all_succeed(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """200 moves from 8 threads, each its own session, as a busy REST server makes them: on
    SQLite a deferred BEGIN that upgraded to a write lock failed with "database is locked"."""
    for i in range(3):
        add(registry, tmp_path / f"v{i}", f"payload-{i}".encode())
    errors: list[BaseException] = []

    def mover(k: int) -> None:
        for j in range(25):
            version = (k + j) % 3 + 1
            try:
                match j % 3:
                    case 0:
                        registry.set_alias("m", "stable", version, actor=f"t{k}")
                    case 1:
                        registry.canary("m", version, 10 + j, actor=f"t{k}")
                    case _:
                        registry.promote("m", version, actor=f"t{k}")
            except BaseException as exc:  # collected: the assertion below names them
                errors.append(exc)

    threads = [threading.Thread(target=mover, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    moves = [e for e in registry.history("m") if e["action"] in ("alias", "canary", "promote")]
    assert len(moves) == 200


@pytest.mark.parametrize("number", [99999999999999999999, 2**31, 0, -1, "²", "1.5", "x"])
def test_version_numbers_out_of_range_are_bad_input(
    registry: ModelRegistry, tmp_path: Path, number: object
) -> None:
    add(registry, tmp_path / "one", b"one")
    registry.add_app("shop")
    calls = [
        lambda: registry.set_alias("m", "stable", number),  # type: ignore[arg-type]
        lambda: registry.promote("m", number),  # type: ignore[arg-type]
        lambda: registry.canary("m", number, 10),  # type: ignore[arg-type]
        lambda: registry.delete_version("m", number),  # type: ignore[arg-type]
        lambda: registry.pin("shop", "m", version=number),  # type: ignore[arg-type]
        lambda: registry.resolve("m", version=number),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(BadInput, match="version must be"):
            call()
    with pytest.raises(BadInput, match="canary percent"):
        registry.canary("m", 1, 10**30)


def test_identical_content_from_another_folder_is_the_same_version(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    first = add(registry, tmp_path / "a", b"weights", source={"kind": "file", "file": "/a"})
    again = add(registry, tmp_path / "b" / "c", b"weights",
                source={"kind": "url", "url": "https://example.org/m.onnx"})
    assert (first.created, again.created) == (True, False)
    assert again.version.number == 1
    assert registry.show("m").versions[0].source == {"kind": "file", "file": "/a"}


def test_delete_alias_is_audited_and_rollback_restores_it(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    add(registry, tmp_path / "one", b"one")
    add(registry, tmp_path / "two", b"two")
    registry.set_alias("m", "beta", 2)
    registry.delete_alias("m", "beta", actor="ops")
    assert "beta" not in registry.show("m").aliases
    assert registry.history("m")[-1]["action"] == "delete-alias"
    with pytest.raises(NotFound, match="no alias 'beta'"):
        registry.delete_alias("m", "beta")
    assert registry.rollback("m", "beta").number == 2
    registry.add_app("shop")
    registry.pin("shop", "m", alias="beta")
    with pytest.raises(Conflict, match="pinned by app shop"):
        registry.delete_alias("m", "beta")


def test_end_canary(registry: ModelRegistry, tmp_path: Path) -> None:
    add(registry, tmp_path / "one", b"one")
    add(registry, tmp_path / "two", b"two")
    registry.promote("m", 1)
    registry.canary("m", 2, 50)
    registry.end_canary("m", actor="ops")
    info = registry.show("m")
    assert (info.canary_percent, info.aliases) == (None, {"production": 1})
    assert {registry.resolve("m", route_key=f"k{i}").number for i in range(50)} == {1}
    assert registry.history("m")[-1]["action"] == "end-canary"
    with pytest.raises(NotFound, match="no canary"):
        registry.end_canary("m")


def test_removing_a_version_a_question_needs_is_refused(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    add(registry, tmp_path / "one", b"one")
    add(registry, tmp_path / "two", b"two")
    graphs = {"describe": [("m", None), ("other", None)], "pinned": [("m", 2)]}
    with pytest.raises(Conflict, match="used by question pinned"):
        registry.delete_version("m", 2, graphs=graphs)
    registry.delete_version("m", 1, graphs={"describe": [("m", None)]})  # 2 still serves it
    with pytest.raises(Conflict, match="used by question describe"):
        registry.delete_version("m", 2, graphs={"describe": [("m", None)]})
    assert [v.number for v in registry.show("m").versions] == [2]


def test_removed_versions_files_go(registry: ModelRegistry, tmp_path: Path) -> None:
    one = add(registry, tmp_path / "one", b"one").version
    two = add(registry, tmp_path / "two", b"two").version
    assert one.path.is_dir() and two.path.is_dir()
    registry.delete_version("m", 1)
    assert not one.path.exists()
    assert two.path.is_dir()
    assert registry.store.load(two.digest).digest == two.digest


def test_apps_show_unpin_and_remove_are_audited(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    add(registry, tmp_path / "one", b"one")
    add(registry, tmp_path / "two", b"two")
    registry.add_app("shop", actor="ops")
    registry.pin("shop", "m", version=1, actor="ops")
    shown = registry.app_pins.show("shop")
    assert shown["pins"] == [{"model": "m", "version": 1, "alias": None}]
    assert [e["action"] for e in shown["history"]] == ["add-app", "pin"]
    assert registry.resolve("m", app="shop").number == 1
    registry.app_pins.unpin("shop", "m", actor="ops")
    assert registry.resolve("m", app="shop").number == 2
    with pytest.raises(NotFound, match="no pin"):
        registry.app_pins.unpin("shop", "m")
    assert registry.history("m")[-1]["action"] == "unpin"
    registry.pin("shop", "m", version=1)
    registry.app_pins.remove("shop", actor="ops")
    with pytest.raises(NotFound, match="no app named 'shop'"):
        registry.resolve("m", app="shop")
    registry.delete_version("m", 1)  # its pin went with the app
    with pytest.raises(NotFound):
        registry.app_pins.show("shop")
    registry.add_app("shop")  # the name is free again; its old history stays readable
    assert [e["action"] for e in registry.app_pins.show("shop")["history"]][-2:] == [
        "remove-app", "add-app"
    ]
