"""Read a torch ``.pt``/``.pth`` state dict into numpy arrays without torch, running no code.

``torch.save`` writes one of two layouts:

* the zip layout (torch >= 1.6): ``<prefix>/data.pkl`` is the pickle of the object, and each
  tensor's storage is the raw little-endian bytes of ``<prefix>/data/<key>``;
* the legacy layout (what the pinned wheels ship): five pickles and raw data back to back in one
  stream: a magic number, the protocol version, a dict of system facts, the object itself, then
  the list of storage keys, each followed by its element count (int64) and its bytes.

In both, a tensor is pickled as a call of ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, hooks)``, and a storage as a persistent id ``("storage", torch.FloatStorage,
key, location, numel)``. The unpickler here resolves only those names (plus ``OrderedDict``) to
functions of its own that rebuild numpy arrays; any other global (``os.system``, ``builtins.eval``,
…) is refused before anything is called, so a hostile file cannot run code. This keeps the rule
"never unpickle from the network" while letting ``argus models pull`` work without torch.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from argus.errors import ArgusError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch's storage classes by the dtype of their elements (little-endian on disk).
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchFileError(ArgusError):
    """A weights file that is not a plain torch state dict (or is damaged)."""

    status = 502


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype[Any]


@dataclass
class _Storage:
    """A storage named by the pickle; its bytes arrive later (legacy) or from the zip."""

    key: str
    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray | None = None


@dataclass
class _PendingTensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    extra: list[Any] = field(default_factory=list)


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, *rest: Any
) -> _PendingTensor:
    """Stands in for ``torch._utils._rebuild_tensor_v2``: records what to cut from which storage."""
    if not isinstance(storage, _Storage):
        raise TorchFileError("a tensor in the file is not built on a storage")
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)):
        raise TorchFileError("a tensor in the file has a malformed offset, size or stride")
    if len(size) != len(stride) or not all(isinstance(n, int) and n >= 0 for n in size + stride):
        raise TorchFileError(f"a tensor in the file has size {size} and stride {stride}")
    return _PendingTensor(storage, offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any, *rest: Any) -> Any:
    """``torch._utils._rebuild_parameter``: a parameter is just its tensor here."""
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
# A tensor may not hold more elements than this (1 GiB of float32): a stride-0 view of one
# element could otherwise ask for any amount of memory.
MAX_ELEMENTS = 1 << 28


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream: io.BufferedIOBase | io.BytesIO, storages: dict[str, _Storage]):
        super().__init__(stream)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            # A new object each time: a BUILD opcode in the file can then change nothing shared.
            return _StorageType(name, STORAGE_DTYPES[name])
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise TorchFileError(
                f"the weights file refers to {module}.{name}, which is not part of a tensor state "
                "dict; refusing to load it (only tensors and OrderedDicts are rebuilt)"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"the weights file names an unknown persistent object {pid!r:.80}")
        kind, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise TorchFileError(f"the weights file describes storage {key!r} oddly")
        key = str(key)
        known = self._storages.get(key)
        if known is None:
            known = self._storages[key] = _Storage(key, kind.dtype, numel)
        elif known.dtype != kind.dtype or known.numel != numel:
            raise TorchFileError(f"storage {key} is described twice, differently")
        return known


def _materialise(obj: Any) -> Any:
    """Replace every pending tensor in dicts/lists/tuples with its numpy array (a copy)."""
    if isinstance(obj, _PendingTensor):
        data = obj.storage.data
        if data is None:
            raise TorchFileError(f"storage {obj.storage.key} has no data in the file")
        size, stride, offset = obj.size, obj.stride, obj.offset
        if 0 in size:
            return np.zeros(size, data.dtype)
        if int(np.prod(size, dtype=np.float64)) > MAX_ELEMENTS:
            raise TorchFileError(f"a tensor of size {size} is larger than any weights Argus reads")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        # as_strided reads raw memory: bounds are checked first so no view can leave the storage.
        if offset < 0 or last >= data.size:
            raise TorchFileError(
                f"a tensor of size {size} at offset {offset} reaches past its storage "
                f"{obj.storage.key} of {data.size} elements"
            )
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
        )
        return np.array(view, dtype=data.dtype.newbyteorder("="))
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) in (dict, collections.OrderedDict) else {}
        for key, value in obj.items():
            out[key] = _materialise(value)
        return out
    if isinstance(obj, list):
        return [_materialise(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v) for v in obj)
    return obj


def _unpickle(stream: io.BytesIO, storages: dict[str, _Storage], what: str) -> Any:
    try:
        return _RestrictedUnpickler(stream, storages).load()
    except TorchFileError:
        raise
    except Exception as exc:  # pickle raises many types for damaged data
        raise TorchFileError(f"{what} is damaged or truncated: {exc}") from exc


def _load_legacy(blob: bytes) -> Any:
    stream = io.BytesIO(blob)
    storages: dict[str, _Storage] = {}
    magic = _unpickle(stream, storages, "the header")
    if magic != LEGACY_MAGIC:
        raise TorchFileError("not a torch weights file (no zip archive and no legacy magic number)")
    protocol = _unpickle(stream, storages, "the header")
    if protocol != LEGACY_PROTOCOL:
        raise TorchFileError(f"unsupported legacy torch protocol version {protocol!r}")
    info = _unpickle(stream, storages, "the header")
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise TorchFileError("the weights file was written on a big-endian machine")
    result = _unpickle(stream, storages, "the weights pickle")
    keys = _unpickle(stream, storages, "the storage list")
    if not isinstance(keys, list):
        raise TorchFileError("the weights file's storage list is not a list")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise TorchFileError(f"the storage list names {key!r}, which no tensor uses")
        head = stream.read(8)
        if len(head) < 8:
            raise TorchFileError(f"the file is truncated before storage {key}")
        (numel,) = struct.unpack("<q", head)
        if numel != storage.numel:
            raise TorchFileError(
                f"storage {key} holds {numel} elements but its tensors expect {storage.numel}"
            )
        nbytes = numel * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) < nbytes:
            raise TorchFileError(
                f"the file is truncated in storage {key}: {len(raw)} of {nbytes} bytes"
            )
        storage.data = np.frombuffer(raw, storage.dtype)
    return _materialise(result)


def _load_zip(blob: bytes) -> Any:
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise TorchFileError(f"the weights archive is damaged or truncated: {exc}") from exc
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TorchFileError("the weights archive has no single <name>/data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
        raise TorchFileError("the weights archive was written big-endian")
    storages: dict[str, _Storage] = {}
    try:
        result = _unpickle(io.BytesIO(archive.read(pickles[0])), storages, "the weights pickle")
        for storage in storages.values():
            member = f"{prefix}data/{storage.key}"
            try:
                raw = archive.read(member)
            except KeyError:
                raise TorchFileError(f"the weights archive has no {member}") from None
            if len(raw) != storage.numel * storage.dtype.itemsize:
                raise TorchFileError(
                    f"{member} has {len(raw)} bytes, but its tensors expect {storage.numel} "
                    f"elements of {storage.dtype.itemsize} bytes"
                )
            storage.data = np.frombuffer(raw, storage.dtype)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise TorchFileError(f"the weights archive is damaged or truncated: {exc}") from exc
    return _materialise(result)


def load_state_dict(blob: bytes) -> dict[str, np.ndarray]:
    """The tensors of a torch state dict (``torch.save(module.state_dict())``) as numpy arrays."""
    result = _load_zip(blob) if blob[:4] == b"PK\x03\x04" else _load_legacy(blob)
    if not isinstance(result, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in result.items()
    ):
        raise TorchFileError("the weights file does not hold a mapping of names to tensors")
    return dict(result)
