"""The schema is Alembic's, and the service refuses a database that is not at head."""

import asyncpg
import pytest
from sqlalchemy import make_url

from service.storage.db import create_engine, ensure_schema_at_head


class TestSchemaVersion:
    async def test_migrated_database_is_accepted(self, worker_database_url: str) -> None:
        engine = create_engine(worker_database_url, pool_size=1)
        try:
            await ensure_schema_at_head(engine)
        finally:
            await engine.dispose()

    async def test_unmigrated_database_is_refused(self, worker_database_url: str) -> None:
        dsn = make_url(worker_database_url).set(drivername="postgresql")
        admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        name = f"{dsn.database}_empty"
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
            engine = create_engine(dsn.set(database=name).render_as_string(hide_password=False), pool_size=1)
            with pytest.raises(RuntimeError, match="ipt-fhir migrate"):
                await ensure_schema_at_head(engine)
            await engine.dispose()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


class TestMigrationsMatchTables:
    async def test_no_difference_between_migrations_and_table_definitions(
        self, worker_database_url: str
    ) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy import Connection

        import service.storage.indexing.rows  # noqa: F401  (registers the index tables)
        from service.storage.tables import metadata

        def differences(connection: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))

        engine = create_engine(worker_database_url, pool_size=1)
        try:
            async with engine.connect() as connection:
                assert await connection.run_sync(differences) == []
        finally:
            await engine.dispose()
