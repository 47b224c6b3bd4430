"""The face-mesh package: MediaPipe's face mesh and iris models converted by the project, the
source and checks it records, and both networks against LiteRT (the reference interpreter, dev
extra) on the crops the face-attributes graph really makes from photos."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from argus.convert import facemesh, mediapipe
from argus.graphs.ops import mesh_crop
from argus.images import Limits, decode
from argus.tasks import face_geometry, load_task_model
from tests.conftest import pulled_package
from tests.convert.conftest import CACHE_DIR


def test_build_records_the_wheel_members_and_the_openvino_checks(tmp_path: Path) -> None:
    fields = facemesh.build(tmp_path, CACHE_DIR)
    assert fields["name"] == "face-mesh" and fields["task"] == "face-attributes"
    assert fields["license"] == "Apache-2.0"
    assert fields["models"] == {"landmark": "landmark.onnx", "iris": "iris.onnx"}
    for role in ("landmark", "iris"):
        assert (tmp_path / f"{role}.onnx").is_file()
        check = fields["source"]["conversion_check"][role]
        assert check["checked"] is True and check["max_rel_diff"] <= check["tolerance"]
    members = {w["member"] for w in fields["source"]["wheels"]}
    assert members == {mediapipe.FACE_LANDMARK.path, mediapipe.IRIS_LANDMARK.path}
    assert all(w["sha256"] == mediapipe.WHEEL.sha256 for w in fields["source"]["wheels"])
    assert fields["inputs"] == [{"name": "input_1", "datatype": "FP32", "shape": [-1, 192, 192, 3]}]


@pytest.fixture(scope="module")
def package_files(pulled_home: Path) -> tuple[dict[str, Path], Any]:
    """The pulled face-mesh package's ONNX files and the pulled MTCNN task."""
    mesh = pulled_package(pulled_home, "face-mesh")
    faces = load_task_model(pulled_package(pulled_home, "mtcnn"), threads=1)
    return mesh.onnx_files(), faces


def real_crops(faces_model: Any, photos: dict[str, bytes]) -> np.ndarray:
    """The mesh crops the graph makes of every face in the photos, as the model's input."""
    crops = []
    for data in photos.values():
        image = decode(data, Limits())
        found = faces_model.finish(faces_model.infer([faces_model.prepare(image, {})])[0],
                                   image, {})
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        crops.extend(mesh_crop(rgb, found, "faces", 192, 1.5, False).crops or [])
    return np.stack(crops).astype(np.float32) / 255.0


def litert(member: mediapipe.Member) -> Any:
    interpreter_module: Any = pytest.importorskip("ai_edge_litert.interpreter")
    data = mediapipe.read_tflite(member, CACHE_DIR)
    interpreter = interpreter_module.Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def compare(interpreter: Any, session: ort.InferenceSession, batch: np.ndarray) -> float:
    """Largest difference over the batch, each row through LiteRT alone."""
    (inp,) = interpreter.get_input_details()
    names = [o.name for o in session.get_outputs()]
    ours = dict(zip(names, session.run(None, {session.get_inputs()[0].name: batch}), strict=True))
    worst = 0.0
    for i, row in enumerate(batch):
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            expected = interpreter.get_tensor(detail["index"])
            got = ours[detail["name"]][i : i + 1]
            worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def test_both_networks_match_litert_on_the_graphs_real_crops(
    package_files: tuple[dict[str, Path], Any],
    photos: dict[str, bytes],
    people_photos: dict[str, bytes],
) -> None:
    files, faces_model = package_files
    chosen = {"astronaut": photos["astronaut"], **{k: people_photos[k] for k in
                                                   ("obama2", "biden", "obama_partial_face")}}
    crops = real_crops(faces_model, chosen)
    assert len(crops) >= 4
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    landmark = ort.InferenceSession(str(files["landmark"]), options,
                                    providers=["CPUExecutionProvider"])
    # Landmarks are crop pixels (0..192); measured here: 1.7e-4 (face mesh), 4.2e-5 (iris).
    assert compare(litert(mediapipe.FACE_LANDMARK), landmark, crops) <= 2e-3
    meshes = landmark.run(None, {"input_1": crops})[0].reshape(len(crops), 468, 3)
    eyes = np.stack([
        cv2.warpAffine(crop, face_geometry.eye_crop_matrix(mesh, eye), (64, 64))
        for crop, mesh in zip(crops, meshes, strict=True)
        for eye in ("left", "right")
    ])
    iris = ort.InferenceSession(str(files["iris"]), options, providers=["CPUExecutionProvider"])
    assert compare(litert(mediapipe.IRIS_LANDMARK), iris, eyes) <= 2e-3
