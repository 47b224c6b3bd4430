"""How the gateway sends a model step: the request's file, a preprocessed tensor when that is
smaller, or lossless pixels for images that are not the request's file (graph crops)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from argus.db.engine import make_engine
from argus.errors import ConfigError, Unavailable
from argus.gateway import RemoteRunner, UpstreamPool, parse_upstreams
from argus.images import DecodedImage, ImageSource, Limits, decode, sha256_bytes
from argus.kserve.tensors import InferRequest
from argus.models.packages import PackageStore
from argus.models.registry import ModelRegistry, VersionInfo
from argus.settings import Settings
from argus.tasks.classify import ClassifyFields
from argus.tasks.image_input import preprocess


@pytest.fixture(scope="module")
def labels(pulled_home: Path) -> tuple[VersionInfo, PackageStore]:
    settings = Settings(home=pulled_home)
    engine = make_engine(settings.db_url)
    store = PackageStore(settings.packages_dir)
    version = ModelRegistry(engine, store).resolve("efficientnet-lite0")
    engine.dispose()
    return version, store


def png(photo: bytes, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(photo)).resize(size).save(buf, format="PNG")
    return buf.getvalue()


def runner(store: PackageStore) -> RemoteRunner:
    # The pool is never called here: these tests look at what would be sent.
    return RemoteRunner(UpstreamPool({"efficientnet-lite0": ["127.0.0.1:1"]}), store)


def request_for(runner: RemoteRunner, version: VersionInfo, data: bytes) -> InferRequest:
    source = ImageSource(data, sha256_bytes(data), Limits())
    return asyncio.run(runner.request(version, source, {"top_k": 3}))


def test_the_file_goes_when_it_is_smaller_than_the_tensor(
    labels: tuple[VersionInfo, PackageStore], photos: dict[str, bytes]
) -> None:
    version, store = labels
    request = request_for(runner(store), version, photos["coffee"])
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("image", "BYTES", (1,))
    assert tensor.data[0] == photos["coffee"]
    assert request.model_name == "efficientnet-lite0" and request.model_version == "1"
    assert request.parameters["argus_digest"] == version.digest
    assert request.parameters["argus_params"] == '{"top_k":3}'
    assert "argus_prepared" not in request.parameters


def test_the_tensor_goes_when_it_is_smaller_than_the_file(
    labels: tuple[VersionInfo, PackageStore], photos: dict[str, bytes]
) -> None:
    version, store = labels
    package = store.load(version.digest)
    data = png(photos["chelsea"], (1200, 900))
    request = request_for(runner(store), version, data)
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("input", "FP32", (1, 3, 224, 224))
    pre = package.fields_as(ClassifyFields).preprocess
    expected = preprocess(decode(data, Limits(), 256).rgb, pre)
    np.testing.assert_array_equal(tensor.data[0], expected)
    assert request.parameters["argus_prepared"] is True
    facts = json.loads(str(request.parameters["argus_image"]))
    assert (facts["width"], facts["height"], facts["format"]) == (1200, 900, "PNG")


def test_the_file_goes_when_the_gateway_lacks_the_package(
    labels: tuple[VersionInfo, PackageStore], photos: dict[str, bytes], tmp_path: Path
) -> None:
    version, _ = labels
    data = png(photos["chelsea"], (1200, 900))  # the tensor would be smaller
    request = request_for(runner(PackageStore(tmp_path)), version, data)
    (tensor,) = request.inputs
    assert tensor.name == "image" and tensor.data[0] == data


def test_other_images_go_as_lossless_pixels(
    labels: tuple[VersionInfo, PackageStore], photos: dict[str, bytes]
) -> None:
    version, store = labels
    crop = np.asarray(Image.open(io.BytesIO(photos["astronaut"])))[40:200, 100:220].copy()
    image = DecodedImage(rgb=crop, width=120, height=160, sha256="abc#0", format="crop")
    request = runner(store).crop_request(version, image, {"top_k": 3})
    (tensor,) = request.inputs
    assert tensor.name == "image"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(tensor.data[0]))), crop)


def test_upstream_flags() -> None:
    assert parse_upstreams(["a=h1:1", "b=h2:2", "a=h3:3", "a=h1:1"]) == {
        "a": ["h1:1", "h3:3"],
        "b": ["h2:2"],
    }
    for bad in ("a", "a=h1", "=h:1", "a=:1", "a=h:port"):
        with pytest.raises(ConfigError, match="MODEL=HOST:PORT"):
            parse_upstreams([bad])
    with pytest.raises(ConfigError, match="at least one"):
        UpstreamPool({})


def test_a_model_without_upstream_is_unavailable_with_the_fix() -> None:
    pool = UpstreamPool({"a": ["127.0.0.1:1"]})
    with pytest.raises(Unavailable, match=r"--upstream b=HOST:PORT"):
        asyncio.run(pool.call("b", "ModelReady", None))
