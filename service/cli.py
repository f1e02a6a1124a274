"""The `ipt-fhir` command: serve, migrate, reindex."""

import os
import signal
import sys
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


@cli.command()
def reindex(
    resource_type: Annotated[
        str | None, typer.Option("--type", help="Only this resource type (default: every type).")
    ] = None,
) -> None:
    """Rebuild the search indexes of every stored resource (after the search parameters changed)."""
    import asyncio

    from service.interactions.reindex import reindex as rebuild
    from service.storage.db import create_engine, ensure_schema_at_head

    async def run() -> int:
        engine = create_engine(_database_url(), pool_size=1)
        try:
            await ensure_schema_at_head(engine)
            return await rebuild(engine, resource_type=resource_type)
        finally:
            await engine.dispose()

    typer.echo(f"reindexed {asyncio.run(run())} resources")


@cli.command("load-content")
def load_content() -> None:
    """Load the IPT worksheets, terminology and protocol (idempotent: unchanged content writes nothing)."""
    import asyncio

    from service.interactions.content import load_ipt_content
    from service.interactions.rules import install_standard_write_pipeline
    from service.storage.db import create_engine, ensure_schema_at_head

    install_standard_write_pipeline()

    async def run() -> str:
        engine = create_engine(_database_url(), pool_size=1)
        try:
            await ensure_schema_at_head(engine)
            return (await load_ipt_content(engine)).summary()
        finally:
            await engine.dispose()

    typer.echo(f"IPT content: {asyncio.run(run())}")


@cli.command()
def token(
    scope: Annotated[str, typer.Option(help='SMART scopes, e.g. "patient/QuestionnaireResponse.cru".')],
    patient: Annotated[str | None, typer.Option(help="Patient id of the launch context.")] = None,
    sub: Annotated[str, typer.Option(help="Subject (who the token speaks for).")] = "developer",
    expires: Annotated[str, typer.Option(help="Lifetime: 30m, 1h, 7d.")] = "1h",
) -> None:
    """Mint a development token, signed with the local HS256 secret."""
    from service.api.security import mint_token

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not expires[:-1].isdigit() or expires[-1] not in units:
        raise typer.BadParameter("use a number and s, m, h or d, e.g. 1h", param_hint="--expires")
    seconds = int(expires[:-1]) * units[expires[-1]]
    typer.echo(mint_token(get_settings(), scope=scope, patient=patient, subject=sub, expires_in=seconds))


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
    typer.echo('a development token: .venv/bin/ipt-fhir token --scope "system/*.cruds"')
    if not settings.database_url:
        typer.echo(f"embedded PostgreSQL data: {Path(settings.data_dir).resolve()}")
    # After a graceful shutdown uvicorn raises the signal that asked for it again, under the handler that
    # was in place before it started; the default one for SIGTERM ends the process on the spot, skipping
    # the exit handlers, among them the one that stops the embedded PostgreSQL. This one exits normally.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="info",
        # Query strings can hold PHI (Patient?name=…): requests are logged by the app, by path only.
        access_log=False,
        proxy_headers=True,
    )


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
