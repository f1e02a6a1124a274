"""The `ipt-fhir` command: serve, migrate."""

import os
from pathlib import Path
from typing import Annotated

import typer

from service.config import get_settings

cli = typer.Typer(help="IPT FHIR service.", no_args_is_help=True, add_completion=False)


def _database_url() -> str:
    from service.storage.db import start_embedded_postgres

    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


@cli.command()
def migrate() -> None:
    """Apply every pending schema migration."""
    from service.storage.db import upgrade_to_head

    upgrade_to_head(_database_url())
    typer.echo("database schema is up to date")


@cli.command("load-content")
def load_content() -> None:
    """Load the IPT worksheets, terminology and protocol (idempotent: unchanged content writes nothing)."""
    import asyncio

    from service.interactions.content import load_ipt_content
    from service.storage.db import create_engine, ensure_schema_at_head

    async def run() -> str:
        engine = create_engine(_database_url(), pool_size=1)
        try:
            await ensure_schema_at_head(engine)
            return (await load_ipt_content(engine)).summary()
        finally:
            await engine.dispose()

    typer.echo(f"IPT content: {asyncio.run(run())}")


@cli.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP server, with the embedded PostgreSQL unless DATABASE_URL is set."""
    import uvicorn

    from service.storage.db import upgrade_to_head

    settings = get_settings()
    url = _database_url()
    upgrade_to_head(url)
    # Workers are separate processes: they find the database through the environment.
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    bind_host, bind_port = host or settings.host, port or settings.port
    typer.echo(f"ipt-fhir on http://{bind_host}:{bind_port}  (FHIR: /fhir, docs: /docs)")
    if not settings.database_url:
        typer.echo(f"embedded PostgreSQL data: {Path(settings.data_dir).resolve()}")
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="info",
        proxy_headers=True,
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
