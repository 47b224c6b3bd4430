"""``argus serve``: flags in, a role out (:mod:`argus.server` builds and runs it)."""

from __future__ import annotations

import typer

from argus.cli.common import handles_errors, settings


@handles_errors
def serve(
    host: str = typer.Option(
        "127.0.0.1", envvar="ARGUS_HOST", help="Address to listen on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(8000, help="REST port: image API, KServe v2 REST, health, metrics."),
    grpc_port: int | None = typer.Option(
        None, help="gRPC port (default: the REST port + 1, so 8001; 0 = no gRPC)."
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
    keep_uncertain: float | None = typer.Option(
        None, min=0.0, max=1.0,
        help="Keep images for review (argus review) whose classify top score is under this, "
        "or on which a canary and production disagree (default ARGUS_KEEP_UNCERTAIN: off).",
    ),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve REST and gRPC: all-in-one, a model service, or the gateway."""
    from argus.server import ServeOptions
    from argus.server import serve as run_role

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
    s = settings()
    if workers is not None:  # workers x runtime threads = cores, unless set otherwise
        s = s.model_copy(update={"workers": workers})
    if keep_uncertain is not None:
        s = s.model_copy(update={"keep_uncertain": keep_uncertain})
    raise typer.Exit(run_role(opts, s))
