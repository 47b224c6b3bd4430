"""``argus serve``: REST and gRPC of one role, in one process and one event loop.

* ``--role all`` (default): everything, models in process.
* ``--role model --models a,b``: only those models, KServe v2 over gRPC (REST: v2, health,
  metrics), with their own batching. Ready once they are loaded.
* ``--role gateway --upstream MODEL=HOST:PORT …``: the public REST + gRPC API; every model step
  goes to a model service.

SIGTERM (or Ctrl-C) stops accepting, lets in-flight requests finish for up to ``--grace``
seconds, closes the models and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import typer

from argus.cli.common import handles_errors, settings
from argus.errors import ArgusError, ConfigError, NotFound
from argus.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_GRPC_PORT = 8001


@dataclass
class ServeOptions:
    host: str
    port: int
    grpc_port: int | None
    role: str
    models: list[str] = field(default_factory=list)
    upstreams: list[str] = field(default_factory=list)
    upstream_timeout: float = 30.0
    grace: float = 10.0
    preload: bool = True
    log_level: str = "info"

    def check(self) -> None:
        """Refuse contradictory flags with a sentence, before anything starts."""
        if self.role not in ("all", "model", "gateway"):
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


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _RestServer:
    """uvicorn without its own signal handling: this process handles SIGTERM for REST and
    gRPC together."""

    def __init__(self, app: Any, opts: ServeOptions) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            app,
            log_level=opts.log_level,
            access_log=False,
            timeout_graceful_shutdown=max(1, round(opts.grace)),
            lifespan="on",
        )
        self.server = Server(config)

    async def serve(self, sock: socket.socket) -> None:
        await self.server.serve(sockets=[sock])

    def stop(self) -> None:
        self.server.should_exit = True


async def _run(opts: ServeOptions, s: Settings, reuse_port: bool = False) -> int:
    from concurrent.futures import ThreadPoolExecutor

    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=s.decode_thread_count(), thread_name_prefix="argus-decode")
    )
    from argus.auth import Tokens
    from argus.grpc.server import build_server, message_limit
    from argus.http.app import create_app
    from argus.kserve.dataplane import LocalPlane, ModelPlane
    from argus.metrics import Metrics, UpstreamStatus
    from argus.service import Vision
    from argus.workers import make_listener

    tokens = Tokens.from_settings(s)
    upstreams: UpstreamStatus | None = None
    vision: Vision
    plane: ModelPlane
    if opts.role == "gateway":
        from argus.gateway import GatewayVision, ProxyPlane, UpstreamPool, parse_upstreams

        pool = UpstreamPool(
            parse_upstreams(opts.upstreams),
            token=tokens.client_token(),
            timeout_s=opts.upstream_timeout,
            max_message_bytes=message_limit(s.max_image_bytes),
        )
        vision = GatewayVision(s, pool)
        plane = ProxyPlane(vision, pool)
        upstreams = pool
    else:
        vision = Vision(s)
        local = LocalPlane(vision, opts.models or None)
        if opts.role == "model":
            for name in opts.models:
                try:
                    vision.registry.resolve(name)
                except NotFound as exc:
                    await vision.close()
                    raise ConfigError(
                        f"cannot serve model {name!r}: {exc.message}; register it first "
                        "(argus models pull / argus models add)"
                    ) from None
        plane = local

    metrics = Metrics()
    metrics.watch(lambda: vision.host, plane.ready, upstreams)
    app = create_app(
        s, vision, plane=plane, metrics=metrics, tokens=tokens, role=opts.role, manage=False
    )
    try:
        sock = make_listener(opts.host, opts.port, reuse_port=reuse_port)
    except OSError as exc:
        await vision.close()
        raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror}") from None

    grpc_server = None
    grpc_port = DEFAULT_GRPC_PORT if opts.grpc_port is None else opts.grpc_port
    if grpc_port:
        try:
            grpc_server, _ = build_server(
                grpc_address(opts.host, grpc_port),
                plane=plane,
                metrics=metrics,
                tokens=tokens,
                max_image_bytes=s.max_image_bytes,
                vision=vision if opts.role != "model" else None,
                reuse_port=reuse_port,
            )
        except ConfigError:
            if opts.grpc_port is not None:
                sock.close()
                await vision.close()
                raise
            # Only the default port: another server here has it; REST still serves.
            log.warning("gRPC port %d is in use; serving REST only", grpc_port)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    failed = False

    async def load() -> None:
        nonlocal failed
        try:
            if not opts.preload:
                vision.ready = True
            elif isinstance(plane, LocalPlane) and opts.role == "model":
                for info in await asyncio.to_thread(plane.served_versions):
                    await vision.host.get(info)
                vision.ready = True
            else:
                await vision.preload()
        except ArgusError as exc:
            log.error("could not load the models: %s", exc.message)
            failed = True
            stop.set()

    rest = _RestServer(app, opts)
    if grpc_server is not None:
        await grpc_server.start()
    rest_task = asyncio.create_task(rest.serve(sock), name="rest")
    load_task = asyncio.create_task(load(), name="preload")
    log.info(
        "argus %s serving REST on %s:%d%s",
        opts.role,
        opts.host,
        opts.port,
        f" and gRPC on port {grpc_port}" if grpc_server is not None else "",
    )
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({rest_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)

    log.info("stopping: refusing new requests, finishing those in flight (up to %gs)", opts.grace)
    vision.ready = False
    rest.stop()
    stops: list[Any] = [rest_task]
    if grpc_server is not None:
        stops.append(grpc_server.stop(opts.grace))
    results = await asyncio.gather(*stops, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, SystemExit):
            log.error("error while stopping: %r", result)
    for task in (load_task, stop_task):
        task.cancel()
    await asyncio.gather(load_task, stop_task, return_exceptions=True)
    await vision.close()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if isinstance(results[0], SystemExit) or failed:
        return 1
    return 0


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run the server on uvloop where it is installed (less per-request overhead in the event
    loop; grpc.aio supports it), else on the standard asyncio loop."""
    try:
        import uvloop
    except ModuleNotFoundError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _worker(index: int, occupancy: Any, opts: ServeOptions, s: Settings) -> None:
    from argus.engines.occupancy import OCCUPANCY

    OCCUPANCY.share(occupancy, index)
    _configure_logging(opts.log_level)
    code = _run_loop(_run(opts, s, reuse_port=True))
    raise SystemExit(code)


@handles_errors
def serve(
    host: str = typer.Option(
        "127.0.0.1", envvar="ARGUS_HOST", help="Address to listen on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(8000, help="REST port: image API, KServe v2 REST, health, metrics."),
    grpc_port: int | None = typer.Option(
        None, help=f"gRPC port (default {DEFAULT_GRPC_PORT}; 0 = no gRPC)."
    ),
    role: str = typer.Option(
        "all",
        help="all: everything in this process; model: serve --models over KServe v2 gRPC; "
        "gateway: the public API, with models on --upstream services.",
    ),
    models: str = typer.Option("", help="Model role: comma-separated names of the models."),
    upstream: list[str] = typer.Option(
        [], help="Gateway role: MODEL=HOST:PORT of a model service (repeat; several per model)."
    ),
    upstream_timeout: float = typer.Option(30.0, help="Gateway: seconds per upstream call."),
    grace: float = typer.Option(10.0, help="Seconds in-flight requests get after SIGTERM."),
    workers: int | None = typer.Option(
        None, help="Processes sharing the ports (default ARGUS_WORKERS, 1)."
    ),
    preload: bool = typer.Option(True, help="Load the models before reporting ready."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve REST and gRPC: all-in-one, a model service, or the gateway."""
    opts = ServeOptions(
        host=host,
        port=port,
        grpc_port=grpc_port,
        role=role,
        models=[m.strip() for m in models.split(",") if m.strip()],
        upstreams=list(upstream),
        upstream_timeout=upstream_timeout,
        grace=grace,
        preload=preload,
        log_level=log_level,
    )
    opts.check()
    s = settings().model_copy(update={"preload": preload})
    _configure_logging(log_level)
    count = s.workers if workers is None else workers
    if count > 1:
        from argus.workers import run_workers

        # workers x runtime threads = cores (unless ARGUS_INTRA_OP_THREADS says otherwise)
        s = s.model_copy(update={"workers": count})

        raise typer.Exit(run_workers(count, _worker, (opts, s)))
    raise typer.Exit(_run_loop(_run(opts, s)))
