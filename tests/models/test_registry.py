"""The registry on SQLite and PostgreSQL: versions, aliases, history, apps, canary."""

from __future__ import annotations

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


def add(registry: ModelRegistry, tmp_path: Path, payload: bytes, name: str = "m", **kw: object):
    src = tmp_path / f"src-{payload.hex()[:12]}"
    src.mkdir(exist_ok=True)
    (src / "model.onnx").write_bytes(payload)
    return registry.register(name, src, FIELDS, actor="test", **kw)  # type: ignore[arg-type]


def test_versions_number_up_and_identical_content_is_not_duplicated(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    one = add(registry, tmp_path, b"one")
    two = add(registry, tmp_path, b"two")
    again = add(registry, tmp_path, b"one")
    assert (one.version.number, one.created) == (1, True)
    assert (two.version.number, two.created) == (2, True)
    assert (again.version.number, again.created) == (1, False)
    info = registry.show("m")
    assert [v.number for v in info.versions] == [1, 2]
    assert info.versions[0].digest != info.versions[1].digest
    assert info.versions[0].path.is_dir()


def test_unpromoted_model_answers_newest_then_production(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    add(registry, tmp_path, b"one")
    add(registry, tmp_path, b"two")
    assert registry.resolve("m").number == 2
    registry.promote("m", 1)
    assert registry.resolve("m").number == 1
    assert registry.resolve("m", version=2).number == 2
    assert registry.show("m").aliases == {"production": 1}


def test_promote_rollback_and_history(registry: ModelRegistry, tmp_path: Path) -> None:
    for payload in (b"one", b"two", b"three"):
        add(registry, tmp_path, payload)
    registry.promote("m", 1)
    registry.promote("m", 2)
    registry.promote("m", 3)
    assert registry.rollback("m").number == 2
    assert registry.rollback("m").number == 1
    with pytest.raises(Conflict, match="no earlier version"):
        registry.rollback("m")
    actions = [(e["action"], e["from_version"], e["to_version"]) for e in registry.history("m")]
    assert actions == [
        ("register", None, 1), ("register", None, 2), ("register", None, 3),
        ("promote", None, 1), ("promote", 1, 2), ("promote", 2, 3),
        ("rollback", 3, 2), ("rollback", 2, 1),
    ]
    assert all(e["actor"] == "" or e["actor"] == "test" for e in registry.history("m"))


def test_concurrent_alias_move_conflicts(registry: ModelRegistry, tmp_path: Path) -> None:
    add(registry, tmp_path, b"one")
    add(registry, tmp_path, b"two")
    registry.set_alias("m", "production", 1)
    registry.set_alias("m", "production", 2, expected_revision=1)
    with pytest.raises(Conflict, match="moved by someone else"):
        registry.set_alias("m", "production", 1, expected_revision=1)
    assert registry.resolve("m").number == 2


def test_removal_refused_while_alias_or_pin_points_at_it(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    add(registry, tmp_path, b"one")
    add(registry, tmp_path, b"two")
    add(registry, tmp_path, b"three")
    registry.promote("m", 1)
    registry.add_app("shop")
    registry.pin("shop", "m", version=2)
    with pytest.raises(Conflict, match="alias production"):
        registry.delete_version("m", 1)
    with pytest.raises(Conflict, match="pinned by app shop"):
        registry.delete_version("m", 2)
    registry.delete_version("m", 3)
    assert [v.number for v in registry.show("m").versions] == [1, 2]
    # numbers are never reused
    assert add(registry, tmp_path, b"four").version.number == 4


def test_app_pins(registry: ModelRegistry, tmp_path: Path) -> None:
    add(registry, tmp_path, b"one")
    add(registry, tmp_path, b"two")
    registry.promote("m", 2)
    registry.set_alias("m", "stable", 1)
    registry.add_app("legacy")
    registry.add_app("edge")
    registry.pin("legacy", "m", version=1)
    registry.pin("edge", "m", alias="stable")
    assert registry.resolve("m", app="legacy").number == 1
    assert registry.resolve("m", app="edge").number == 1
    registry.set_alias("m", "stable", 2)
    assert registry.resolve("m", app="edge").number == 2
    assert registry.resolve("m").number == 2
    with pytest.raises(NotFound, match="no app named 'nope'"):
        registry.resolve("m", app="nope")
    with pytest.raises(Conflict, match="exists already"):
        registry.add_app("edge")


def test_canary_is_deterministic_by_key_and_ends_on_promote(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    add(registry, tmp_path, b"one")
    add(registry, tmp_path, b"two")
    registry.promote("m", 1)
    registry.canary("m", 2, 30)
    keys = [f"image-{i}" for i in range(400)]
    first = [registry.resolve("m", route_key=k).number for k in keys]
    second = [registry.resolve("m", route_key=k).number for k in keys]
    assert first == second
    share = first.count(2) / len(first)
    assert 0.2 < share < 0.4
    registry.promote("m", 2)
    assert registry.show("m").canary_percent is None
    assert {registry.resolve("m", route_key=k).number for k in keys} == {2}


def test_unknown_names_and_bad_input(registry: ModelRegistry, tmp_path: Path) -> None:
    add(registry, tmp_path, b"one")
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        registry.resolve("ghost")
    with pytest.raises(NotFound, match="no version 9"):
        registry.resolve("m", version=9)
    with pytest.raises(NotFound, match="no alias 'beta'"):
        registry.resolve("m", alias="beta")
    with pytest.raises(Conflict, match="no such version"):
        registry.promote("m", 9)
    with pytest.raises(Conflict, match="no such version"):
        registry.set_alias("m", "beta", 9)
    assert registry.show("m").aliases == {}  # nothing half-done
    with pytest.raises(BadInput, match="canary percent"):
        registry.canary("m", 1, 120)
    with pytest.raises(BadInput, match="model name"):
        add(registry, tmp_path, b"x", name="Bad Name!")
    with pytest.raises(BadInput, match="model name"):  # `$` alone would let the newline pass
        add(registry, tmp_path, b"x", name="m2\n")


def test_an_alias_is_never_all_digits(registry: ModelRegistry, tmp_path: Path) -> None:
    """A number names a version wherever a version or an alias may stand (pins, KServe's
    /versions/{v}), so an alias '2024' could never be asked for by name."""
    add(registry, tmp_path, b"one")
    with pytest.raises(BadInput, match="all digits"):
        registry.set_alias("m", "2024", 1)
    registry.add_app("shop")
    with pytest.raises(BadInput, match="all digits"):
        registry.app_pins.pin("shop", "m", alias="7")
    assert registry.set_alias("m", "v2024", 1).aliases == ["v2024"]
    assert registry.set_alias("m", "2024-q1", 1).number == 1


def test_lineage_fields_are_kept(registry: ModelRegistry, tmp_path: Path) -> None:
    add(registry, tmp_path, b"one")
    two = add(
        registry, tmp_path, b"two", parent_version=1, training_data_digest="sha256:abc",
        metrics={"top1": 0.71}, labels={"team": "vision"},
    ).version
    assert (two.parent_version, two.training_data_digest) == (1, "sha256:abc")
    assert two.metrics == {"top1": 0.71}
    shown = registry.show("m").versions[1]
    assert shown.labels == {"team": "vision"}
    with pytest.raises(NotFound):
        add(registry, tmp_path, b"three", parent_version=7)
    assert [v.number for v in registry.show("m").versions] == [1, 2]  # no partial state


def test_generation_moves_on_every_change(registry: ModelRegistry, tmp_path: Path) -> None:
    g0 = registry.generation()
    add(registry, tmp_path, b"one")
    g1 = registry.generation()
    registry.promote("m", 1)
    assert g0 < g1 < registry.generation()
