"""``argus serve``: the all-in-one role (REST; gRPC and other roles plug in here)."""

from __future__ import annotations

import logging

import typer

from argus.cli.common import handles_errors, settings


@handles_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="REST port."),
    preload: bool = typer.Option(True, help="Load production models before reporting ready."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve the REST API (all-in-one role, models in process)."""
    import uvicorn

    from argus.http.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    s = settings().model_copy(update={"preload": preload})
    app = create_app(s)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
