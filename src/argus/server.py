"""The composition root: builds each role from its parts and owns its life.

* ``all`` (the default): every question, models in process (:class:`ModelHost`);
* ``model``: only ``--models``, KServe v2 over gRPC (REST: v2, health, metrics), its own
  batching; ready once they are loaded;
* ``gateway``: the public REST + gRPC API; the core's model runner sends every model step to a
  model service (:class:`~argus.gateway.RemoteRunner`).

``--workers N`` runs N processes of a role sharing its ports (SO_REUSEPORT).

:class:`Server` owns the REST and gRPC servers, the core, the data plane, metrics, model
loading, signals and shutdown: SIGTERM (or Ctrl-C) stops accepting, lets in-flight requests
finish for up to ``grace`` seconds, closes the models and returns. ``local_core`` is the one way
to build a core with its models in this process (the CLI commands, workers, ingest, tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from argus.core import Core
from argus.errors import ArgusError, ConfigError, NotFound
from argus.models.packages import PackageStore
from argus.runtime.host import ModelHost
from argus.settings import Settings

if TYPE_CHECKING:
    # What only the serving roles use is imported where a role is built, so that
    # ``local_core`` (argus ask, jobs, worker, ingest) loads no web or metrics stack.
    from fastapi import FastAPI

    from argus.auth import Tokens
    from argus.kserve.dataplane import ModelPlane
    from argus.metrics import Metrics, UpstreamStatus

log = logging.getLogger(__name__)

ROLES = ("all", "model", "gateway")
#: gRPC listens on the REST port + 1 unless told otherwise (8000 → 8001).
GRPC_PORT_OFFSET = 1


@dataclass
class ServeOptions:
    """What ``argus serve`` was asked for besides the settings."""

    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = None
    """None: the REST port + 1, given up with a warning when it is taken; 0: no gRPC."""
    role: str = "all"
    models: list[str] = field(default_factory=list)
    upstreams: list[str] = field(default_factory=list)
    upstream_timeout: float = 30.0
    grace: float = 10.0
    preload: bool = True
    log_level: str = "info"

    def default_grpc_port(self) -> int:
        """The REST port + 1; none when REST takes any free port (0)."""
        return self.port + GRPC_PORT_OFFSET if self.port else 0

    def check(self) -> None:
        """Refuse contradictory flags with a sentence, before anything starts."""
        if self.role not in ROLES:
            raise ConfigError(f"--role must be all, model or gateway, not {self.role!r}")
        if self.role == "model" and not self.models:
            raise ConfigError("--role model needs --models NAME[,NAME…]: the models to serve")
        if self.role != "model" and self.models:
            raise ConfigError("--models is for --role model; all-in-one serves every model")
        if self.role == "gateway" and not self.upstreams:
            raise ConfigError("--role gateway needs at least one --upstream MODEL=HOST:PORT")
        if self.role != "gateway" and self.upstreams:
            raise ConfigError("--upstream is for --role gateway")
        if self.grace < 0:
            raise ConfigError(f"--grace must not be negative, not {self.grace}")


def local_core(settings: Settings) -> Core:
    """A core whose models run in this process."""
    return _local(settings)[0]


def _local(settings: Settings) -> tuple[Core, ModelHost]:
    store = PackageStore(settings.packages_dir)
    host = ModelHost.from_settings(store, settings)
    return Core(settings, host, store), host


@dataclass
class Parts:
    """What a role is made of: the core (which answers questions where ``questions``), the
    KServe data plane, metrics, tokens, and how the role loads its models."""

    core: Core
    plane: ModelPlane
    metrics: Metrics
    tokens: Tokens
    questions: bool
    upstreams: UpstreamStatus | None = None

    async def load(self, opts: ServeOptions) -> None:
        """Load what the role serves, then report ready."""
        from argus.kserve.dataplane import LocalPlane

        core = self.core
        if not opts.preload:
            core.ready = True
        elif isinstance(self.plane, LocalPlane) and self.plane.models is not None:
            for info in await asyncio.to_thread(self.plane.served_versions):
                await core.load_or_refuse(info)
            core.ready = True
        else:
            await core.preload()


def build_parts(opts: ServeOptions, settings: Settings) -> Parts:
    """The parts of ``opts.role`` (refuses, with the reason, what cannot work)."""
    from argus.auth import Tokens
    from argus.kserve.dataplane import LocalPlane
    from argus.metrics import Metrics

    opts.check()
    tokens = Tokens.from_settings(settings)
    metrics = Metrics()
    if opts.role == "gateway":
        from argus.gateway import ProxyPlane, RemoteRunner, UpstreamPool, parse_upstreams
        from argus.grpc.server import message_limit

        pool = UpstreamPool(
            parse_upstreams(opts.upstreams),
            token=tokens.client_token(),
            timeout_s=opts.upstream_timeout,
            max_message_bytes=message_limit(settings.max_image_bytes),
        )
        store = PackageStore(settings.packages_dir)
        core = Core(settings, RemoteRunner(pool, store), store)
        missing = sorted(set(core.registry.names()) - set(pool.models()))
        if missing:
            log.warning(
                "no --upstream for %s: questions on these models will answer 503",
                ", ".join(missing),
            )
        metrics.watch(core.runner, lambda: core.ready, pool)
        metrics.watch_review(core.keeper)
        return Parts(core, ProxyPlane(core, pool), metrics, tokens, True, pool)
    core, host = _local(settings)
    plane = LocalPlane(core, host, opts.models or None)
    for name in opts.models:
        try:
            core.registry.resolve(name)
        except NotFound as exc:
            core.engine.dispose()
            raise ConfigError(
                f"cannot serve model {name!r}: {exc.message}; register it first "
                "(argus models pull / argus models add)"
            ) from None
    metrics.watch(host, plane.ready)
    if opts.role == "all":
        metrics.watch_review(core.keeper)
    return Parts(core, plane, metrics, tokens, opts.role == "all")


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _RestServer:
    """uvicorn without its own signal handling: the server handles SIGTERM for REST and gRPC
    together."""

    def __init__(self, app: Any, opts: ServeOptions, settings: Settings) -> None:
        import uvicorn

        from argus.http.connections import guarded_protocol

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app,
            log_level=opts.log_level,
            access_log=False,
            # The server answers what is left 503 at the grace (Drain); uvicorn's own cancel,
            # which answers 500 with a traceback, comes only after that.
            timeout_graceful_shutdown=math.ceil(opts.grace) + 2,
            lifespan="on",
            http=guarded_protocol(settings.header_timeout_s, settings.body_timeout_s),
            timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)),
        )
        self.server = Server(config)

    async def serve(self, sock: socket.socket) -> None:
        await self.server.serve(sockets=[sock])

    def stop(self) -> None:
        self.server.should_exit = True


class Server:
    """One role's REST and gRPC servers on one event loop (see the module docstring)."""

    def __init__(self, opts: ServeOptions, settings: Settings, reuse_port: bool = False) -> None:
        self.opts = opts
        self.settings = settings
        self.reuse_port = reuse_port
        self.parts = build_parts(opts, settings)
        self.stopping = asyncio.Event()
        self.failed = False
        from argus.http.draining import Drain

        self.drain = Drain()

    def rest_app(self) -> FastAPI:
        from argus.http.app import create_app

        parts = self.parts
        return create_app(
            parts.plane,
            parts.metrics,
            parts.tokens,
            max_image_bytes=self.settings.max_image_bytes,
            core=parts.core if parts.questions else None,
            refused=parts.core.refused_models,
            drain=self.drain,
        )

    def _grpc_server(self) -> tuple[Any, int] | None:
        from argus.grpc.server import build_server

        opts, parts = self.opts, self.parts
        port = opts.default_grpc_port() if opts.grpc_port is None else opts.grpc_port
        if not port:
            return None
        try:
            server, _ = build_server(
                grpc_address(opts.host, port),
                plane=parts.plane,
                metrics=parts.metrics,
                tokens=parts.tokens,
                max_image_bytes=self.settings.max_image_bytes,
                core=parts.core if parts.questions else None,
                reuse_port=self.reuse_port,
            )
        except ConfigError:
            if opts.grpc_port is not None:
                raise
            # Only the default port: another server here has it; REST still serves.
            log.warning("gRPC port %d is in use; serving REST only (--grpc-port chooses another)",
                        port)
            return None
        return server, port

    async def _load(self) -> None:
        try:
            await self.parts.load(self.opts)
        except ArgusError as exc:
            log.error("could not load the models: %s", exc.message)
            self.failed = True
            self.stopping.set()
            return
        # What is loaded by now (modules, schemas, the models' wrappers) lives as long as the
        # process: the collector stops walking it. Under load its full collections walked all
        # of it again and again (about 2% of the server's CPU at 16 clients).
        gc.collect()
        gc.freeze()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or the models fail to load); the exit code."""
        opts, core = self.opts, self.parts.core
        try:
            sock = make_listener(opts.host, opts.port, reuse_port=self.reuse_port)
        except OSError as exc:
            await core.close()
            raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror}"
                              ) from None
        try:
            grpc = self._grpc_server()
        except ConfigError:
            sock.close()
            await core.close()
            raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        rest = _RestServer(self.rest_app(), opts, self.settings)
        if grpc is not None:
            await grpc[0].start()
        rest_task = asyncio.create_task(rest.serve(sock), name="rest")
        load_task = asyncio.create_task(self._load(), name="preload")
        log.info(
            "argus %s serving REST on %s:%d%s", opts.role, opts.host, opts.port,
            f" and gRPC on port {grpc[1]}" if grpc is not None else "",
        )
        stop_task = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({rest_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)

        log.info("stopping: refusing new requests, finishing those in flight (up to %gs)",
                 opts.grace)
        core.ready = False
        rest.stop()
        stops: list[Any] = [rest_task]
        if grpc is not None:
            stops.append(grpc[0].stop(opts.grace))
        expire = loop.call_later(opts.grace, self.drain.expire)
        results = await asyncio.gather(*stops, return_exceptions=True)
        expire.cancel()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, SystemExit):
                log.error("error while stopping: %r", result)
        for task in (load_task, stop_task):
            task.cancel()
        await asyncio.gather(load_task, stop_task, return_exceptions=True)
        await core.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        return 1 if isinstance(results[0], SystemExit) or self.failed else 0


def in_process_app(settings: Settings) -> FastAPI:
    """The all-in-one REST app, managing its own life: its lifespan loads the models (where
    ``settings.preload``) and closes the core at shutdown. For embedding and tests; ``argus
    serve`` runs :class:`Server`."""
    from argus.auth import Tokens
    from argus.http.app import create_app
    from argus.kserve.dataplane import LocalPlane
    from argus.metrics import Metrics

    core, host = _local(settings)
    metrics = Metrics()
    plane = LocalPlane(core, host)
    metrics.watch(host, plane.ready)
    metrics.watch_review(core.keeper)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(core.preload()) if settings.preload else None
        if task is None:
            core.ready = True
        try:
            yield
        finally:
            if task is not None and not task.done():
                task.cancel()
            await core.close()

    return create_app(
        plane,
        metrics,
        Tokens.from_settings(settings),
        max_image_bytes=settings.max_image_bytes,
        core=core,
        lifespan=lifespan,
    )


# -- processes ---------------------------------------------------------------------------
# Listening sockets are made with ``IPPROTO_TCP`` explicitly: asyncio only sets TCP_NODELAY on
# accepted connections whose socket says so, and a bare ``socket(AF_INET, SOCK_STREAM)`` (what
# uvicorn's ``--workers`` uses) leaves Nagle on, which costs a lone client ~40 ms per request.
# ``--workers N`` runs N copies of the role, each with its own models and event loop, sharing
# the ports through SO_REUSEPORT (the kernel spreads connections, not requests).


def make_listener(host: str, port: int, reuse_port: bool = False, backlog: int = 2048
                  ) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def run_workers(count: int, target: Callable[..., Any], args: tuple[Any, ...] = (),
                restart: bool = True) -> int:
    """Run ``target(index, occupancy, *args)`` in ``count`` processes until SIGINT/SIGTERM;
    a worker that dies unexpectedly is restarted. ``occupancy`` is a shared array with a slot
    per worker for :mod:`argus.engines.occupancy`. Returns the exit code for the parent."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False
    occupancy = ctx.Array("i", count, lock=False)

    def start(index: int) -> BaseProcess:
        occupancy[index] = 0  # a worker that died mid-request must not leave its count behind
        proc = ctx.Process(
            target=target, args=(index, occupancy, *args), name=f"argus-worker-{index}"
        )
        proc.start()
        return proc

    procs = {i: start(i) for i in range(count)}

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(0.2)
            if stopping:
                deadline = time.monotonic() + 30
                for proc in procs.values():
                    proc.join(max(0.1, deadline - time.monotonic()))
                    if proc.is_alive():
                        proc.kill()
                return 0
            for i, proc in list(procs.items()):
                if not proc.is_alive():
                    if not restart:
                        stop(signal.SIGTERM, None)
                        break
                    log.warning("worker %d exited with %s; restarting it", i, proc.exitcode)
                    procs[i] = start(i)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (less per-request overhead in the event loop;
    grpc.aio supports it), else on the standard asyncio loop."""
    try:
        import uvloop
    except ModuleNotFoundError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve(opts: ServeOptions, settings: Settings, reuse_port: bool) -> int:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(
            max_workers=settings.decode_thread_count(), thread_name_prefix="argus-decode"
        )
    )
    return await Server(opts, settings, reuse_port).run()


def _worker(index: int, occupancy: Any, opts: ServeOptions, settings: Settings) -> None:
    from argus.engines.occupancy import OCCUPANCY

    OCCUPANCY.share(occupancy, index)
    _configure_logging(opts.log_level)
    raise SystemExit(_run_loop(_serve(opts, settings, reuse_port=True)))


def serve(opts: ServeOptions, settings: Settings) -> int:
    """Run the role in this process, or in ``settings.workers`` processes sharing the ports;
    returns the exit code."""
    opts.check()
    _configure_logging(opts.log_level)
    if settings.workers > 1:
        return run_workers(settings.workers, _worker, (opts, settings))
    return _run_loop(_serve(opts, settings, reuse_port=False))
