"""All settings in one place: environment variables with the ``ARGUS_`` prefix."""

from __future__ import annotations

import math
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def available_cores() -> int:
    """Cores this process may use: the CPUs it is allowed to run on, capped by a cgroup CPU
    quota (a container's CPU limit; ``os.cpu_count()`` would count the whole node)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPU limit in cores from cgroup v2 ``cpu.max`` or v1 ``cfs_quota_us`` (None: no limit)."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        base = Path("/sys/fs/cgroup/cpu")
        quota_us = int((base / "cpu.cfs_quota_us").read_text())
        period_us = int((base / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "argus"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "argus"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARGUS_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    """Data directory: database, model packages, questions, job images."""

    cache_dir: Path = Field(default_factory=_default_cache)
    """Downloaded wheels and converted packages, shared between homes (makes pulls idempotent)."""

    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<home>/argus.db``."""

    max_image_bytes: int = 20 * 1024 * 1024
    """Largest encoded image accepted."""

    max_image_pixels: int = 50_000_000
    """Largest decoded image (width x height) accepted; checked before full decode."""

    question_pixels: int = Field(default=32_000_000, ge=1)
    """Most pixels one question may decode, summed over the sizes its steps decode (a JPEG is
    decoded at the reduced DCT scale each model needs, so it counts a quarter, a sixteenth or
    a sixty-fourth of its pixels; other formats decode at full size, at about three times the
    cost per pixel, and count three times: 10.6 MP at most). Over it: 413 with the reason.
    Bounds the memory and time one image can cost."""

    intra_op_threads: int = 0
    """Runtime threads per inference call; 0 = cores / (workers x lanes)."""

    lone_threads: int = 0
    """Runtime threads for an inference call that runs alone in the server (a quiet server
    answers sooner on every core); 0 = every core. Set it to the per-call threads to turn it
    off (each model then holds one session instead of two)."""

    lanes: int = 0
    """Batches each model runs at once in a server process, each on a thread of its own that
    decodes, preprocesses and infers; 0 = cores / workers (workers x lanes x runtime threads
    = cores). Lanes share one process's queue, so every request goes to the first free one."""

    decode_threads: int = 0
    """Threads per server process for decoding and other blocking work; 0 = cores / workers
    (more only adds GIL and cache contention with the inference threads)."""

    workers: int = 1
    """Worker processes for ``argus serve``."""

    max_batch_size: int | None = None
    """Override of every model's manifest ``max_batch_size``."""

    max_wait_ms: float | None = None
    """Override of every model's manifest ``max_wait_ms``."""

    max_queue: int = 256
    """Requests waiting per model before new ones get 503 with Retry-After."""

    preload: bool = True
    """Load production models at start-up (readiness waits for them)."""

    runtime: str | None = None
    """Inference engine for every model: onnxruntime or openvino (default: the manifest's)."""

    precision: str | None = None
    """OpenVINO precision: f32 or bf16 (bf16 only for models whose manifest checked it)."""

    model_memory_mb: int = 0
    """Bound on the sum of loaded model sessions (0 = unbounded)."""

    cache_entries: int = 4096
    """Step results kept in memory (LRU) so a repeated image answers without running models;
    0 turns it off."""

    cache_mb: int = 256
    """Bound on the memory the step cache holds (aligned crops make entries large)."""

    callback_hosts: str = ""
    """Comma-separated hosts (or host:port) a job's callback_url may point at; empty = none."""

    callback_secret: str = Field(default="", repr=False)
    """Key that signs job callbacks: each POST carries ``X-Argus-Signature: sha256=<hex>``,
    the HMAC-SHA256 of the exact body bytes with this key (no header when empty)."""

    callback_timeout_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    """How long one callback POST may take; a delivery's lease is three times this, so only a
    dead worker's lapses (and another worker sends the callback again)."""

    job_lease_seconds: float = 30.0
    """How long a worker's claim holds without a heartbeat before another worker may retry it."""

    job_max_attempts: int = 3
    """Tries per job (a worker dying mid-job counts) before it is dead with the last error."""

    train_max_upload_bytes: int = 1024 * 1024 * 1024
    """Largest upload ``POST /v1/train`` accepts (the zip of photos, or the photos together)."""

    train_timeout_s: float = 3600.0
    """A training job still running after this long is ended and fails (it may be retried)."""

    job_backoff_seconds: float = 2.0
    """Wait before a failed job's first retry; doubles per attempt, at most 5 minutes."""

    admin_tokens: str = ""
    """Comma-separated admin tokens, or @path to a file of tokens (one per line)."""

    infer_tokens: str = ""
    """Comma-separated inference tokens, or @path to a file."""

    header_timeout_s: float = 10.0
    """REST: a connection whose request headers are not complete this many seconds after it
    opened (or after the request's first byte) is closed (slowloris, idle sockets)."""

    body_timeout_s: float = 60.0
    """REST: a request body not complete this many seconds after its headers is cut off."""

    keepalive_timeout_s: float = 5.0
    """REST: an idle keep-alive connection is closed after this many seconds."""

    records_query_timeout_s: float = 10.0
    """``argus records query``: the clause is stopped after this many seconds."""

    records_reader_role: str = "argus_records_reader"
    """PostgreSQL: the role ``records query`` runs as (SELECT on prediction_records only;
    created, and granted to the database user, on first use when the user may)."""

    keep_uncertain: float | None = Field(default=None, ge=0.0, le=1.0)
    """Keep images for review (``argus review``, ``/v1/review``) whose classify answer's top
    score is below this threshold, or on which a running canary and production disagree;
    None = off. A request may set its own (``keep_uncertain``)."""

    review_budget_mb: int = Field(default=500, ge=1)
    """Disk kept images may take under ``<home>/review``; past it the oldest unlabelled ones
    are deleted (labelled ones stay until discarded)."""

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'argus.db'}"

    @property
    def packages_dir(self) -> Path:
        return self.home / "packages"

    @property
    def questions_dir(self) -> Path:
        return self.home / "questions"

    @property
    def review_dir(self) -> Path:
        """Images kept for review, content-addressed."""
        return self.home / "review"

    def dataset_dir(self, model: str) -> Path:
        """Where labelled images of ``model`` are filed: one folder per class label, what
        ``argus train NAME --data DIR`` reads."""
        return self.home / "datasets" / model

    def cores_per_worker(self) -> int:
        return max(1, available_cores() // max(1, self.workers))

    def decode_thread_count(self) -> int:
        return self.decode_threads if self.decode_threads > 0 else self.cores_per_worker()

    def lane_count(self) -> int:
        return self.lanes if self.lanes > 0 else self.cores_per_worker()

    def threads_per_session(self) -> int:
        if self.intra_op_threads > 0:
            return self.intra_op_threads
        return max(1, self.cores_per_worker() // self.lane_count())

    def lone_thread_count(self) -> int:
        return self.lone_threads if self.lone_threads > 0 else available_cores()

