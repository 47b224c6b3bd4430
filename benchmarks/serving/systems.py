"""The systems under test: Argus configurations and the peers, each as a ``ServerSpec``."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serving.servers import ServerSpec
from serving.venvs import ensure_venv, installed_versions

BENCH_DIR = Path(__file__).resolve().parent.parent
PEERS_DIR = BENCH_DIR / "peers"
ENV_ASSIGNMENT = re.compile(r"^[A-Z][A-Z0-9_]*=")
# The peers' model libraries, the same for each so that only the serving differs.
MODEL_REQUIREMENTS = ["onnxruntime", "numpy", "pillow"]


@dataclass(frozen=True)
class ArgusConfig:
    """One way to run ``argus serve``: extra arguments and environment (ARGUS_* settings)."""

    label: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ArgusConfig:
        """``"LABEL: --workers 2 ARGUS_MAX_BATCH_SIZE=8"``: NAME=VALUE words go to the
        environment, the rest to ``argus serve``."""
        label, sep, rest = text.partition(":")
        if not sep or not label.strip():
            raise ValueError(f"an Argus config reads 'LABEL: ARGS ENV=VALUE ...', not {text!r}")
        args: list[str] = []
        env: dict[str, str] = {}
        for word in shlex.split(rest):
            if ENV_ASSIGNMENT.match(word):
                name, _, value = word.partition("=")
                env[name] = value
            else:
                args.append(word)
        return cls(label.strip(), tuple(args), env)


# Argus as installed (one process, one inference lane per core, each lane one runtime thread;
# a lone request runs on every core), the same with one process per core, and the default on
# OpenVINO bf16. `--argus 'LABEL: ...'` on the command line replaces the list.
DEFAULT_ARGUS_CONFIGS = [
    ArgusConfig("argus"),
    ArgusConfig("argus-workers-2", ("--workers", "2")),
    ArgusConfig(
        "argus-openvino-bf16", (), {"ARGUS_RUNTIME": "openvino", "ARGUS_PRECISION": "bf16"}
    ),
]


def argus_spec(config: ArgusConfig, argus_bin: Path, home: Path) -> ServerSpec:
    # gRPC on a free port of its own: it runs as deployed, without clashing with 8001.
    command = [str(argus_bin), "serve", "--host", "127.0.0.1", "--port", "{port}"]
    command += ["--grpc-port", "{free_port}"]
    command += ["--log-level", "warning", *config.args]
    return ServerSpec(
        name=config.label,
        command=command,
        env={"ARGUS_HOME": str(home), **config.env},
        predict_path="/v1/questions/labels",
        ready_path="/v2/health/ready",
        settings={"args": list(config.args), "env": config.env},
    )


@dataclass(frozen=True)
class Peer:
    """A peer as its documentation sets it up, with the packages it needs from PyPI."""

    name: str
    description: str
    requirements: list[str]
    distributions: list[str]  # whose installed versions go into the results
    command: Callable[[Path], list[str]]  # venv -> argv ({port} is filled in later)
    predict_path: str = "/predict"
    ready_path: str = "/health"
    body_format: str = "raw"  # see loadgen.encode_bodies
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    # Writes the peer's own configuration files into a work directory: (workdir, model_dir).
    configure: Callable[[Path, Path], None] | None = None


def write_mlserver_repository(workdir: Path, model_dir: Path) -> None:
    """``settings.json`` and ``<model>/model-settings.json`` as MLServer's docs lay them out;
    ports come from MLSERVER_* environment variables, as they change each run."""
    settings = {"debug": False, "parallel_workers": 2, "host": "127.0.0.1"}
    model = {
        "name": "efficientnet-lite0",
        "implementation": "mlserver_runtime.ClassifierRuntime",
        "max_batch_size": 8,
        "max_batch_time": 0.005,
        "parameters": {"uri": str(model_dir)},
    }
    (workdir / "efficientnet-lite0").mkdir(parents=True, exist_ok=True)
    (workdir / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    (workdir / "efficientnet-lite0" / "model-settings.json").write_text(
        json.dumps(model, indent=2) + "\n"
    )


PEERS: dict[str, Peer] = {
    "fastapi": Peer(
        name="fastapi",
        description="FastAPI + uvicorn, 2 workers, def endpoint",
        requirements=["fastapi[standard]", *MODEL_REQUIREMENTS],
        distributions=["fastapi", "uvicorn", "onnxruntime"],
        command=lambda venv: [
            str(venv / "bin" / "uvicorn"),
            "fastapi_app:app",
            "--host=127.0.0.1",
            "--port={port}",
            "--workers=2",
            "--log-level=warning",
            "--no-access-log",
        ],
    ),
    "flask": Peer(
        name="flask",
        description="Flask + gunicorn, 2 sync workers",
        requirements=["flask", "gunicorn", *MODEL_REQUIREMENTS],
        distributions=["flask", "gunicorn", "onnxruntime"],
        command=lambda venv: [
            str(venv / "bin" / "gunicorn"),
            "--workers=2",
            "--bind=127.0.0.1:{port}",
            "--log-level=warning",
            "flask_app:app",
        ],
    ),
    "litserve": Peer(
        name="litserve",
        description="LitServe, 2 workers, max_batch_size 8, batch_timeout 5 ms",
        requirements=["litserve", "python-multipart", *MODEL_REQUIREMENTS],
        distributions=["litserve", "fastapi", "uvicorn", "onnxruntime"],
        command=lambda venv: [str(venv / "bin" / "python"), "litserve_app.py", "{port}"],
        body_format="multipart:image",
        extra_env={"PEER_MAX_BATCH_SIZE": "8", "PEER_BATCH_TIMEOUT_S": "0.005"},
    ),
    "mlserver": Peer(
        name="mlserver",
        description="MLServer custom runtime, 2 parallel workers, adaptive batching 8 / 5 ms",
        # uvloop 0.22 breaks MLServer 1.7's parallel workers (SeldonIO/MLServer issue 2286).
        requirements=["mlserver", "uvloop<0.22", *MODEL_REQUIREMENTS],
        distributions=["mlserver", "fastapi", "uvicorn", "onnxruntime"],
        command=lambda venv: [str(venv / "bin" / "mlserver"), "start", "."],
        predict_path="/v2/models/efficientnet-lite0/infer",
        ready_path="/v2/models/efficientnet-lite0/ready",
        body_format="v2:image",
        extra_env={
            "PYTHONPATH": str(PEERS_DIR),
            "MLSERVER_HTTP_PORT": "{port}",
            "MLSERVER_GRPC_PORT": "{free_port}",
            "MLSERVER_METRICS_PORT": "{free_port}",
        },
        configure=write_mlserver_repository,
    ),
}


def peer_spec(peer: Peer, work: Path, model_dir: Path) -> ServerSpec:
    """Install the peer's venv under ``work/venvs`` if needed, write its configuration under
    ``work/peers`` if it has any, and describe how to start it."""
    venv = ensure_venv(work / "venvs", peer.name, peer.requirements)
    cwd = PEERS_DIR
    if peer.configure is not None:
        cwd = work / "peers" / peer.name
        cwd.mkdir(parents=True, exist_ok=True)
        peer.configure(cwd, model_dir)
    cores = os.cpu_count() or 1
    threads = max(1, cores // peer.workers)
    env = {
        "PEER_MODEL_DIR": str(model_dir),
        "PEER_THREADS": str(threads),
        "PEER_WORKERS": str(peer.workers),
        **peer.extra_env,
    }
    return ServerSpec(
        name=peer.name,
        command=peer.command(venv),
        env=env,
        cwd=cwd,
        predict_path=peer.predict_path,
        ready_path=peer.ready_path,
        body_format=peer.body_format,
        settings={
            "description": peer.description,
            "env": {k: v for k, v in env.items() if k != "PEER_MODEL_DIR"},
            "versions": installed_versions(venv, peer.distributions),
        },
    )
