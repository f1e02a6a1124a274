"""A transaction's repository reads a resource once and parses it once; any other reads afresh."""

from sqlalchemy.ext.asyncio import AsyncEngine

from service.storage.repository import ResourceRepository

FORM = {"resourceType": "Questionnaire", "status": "active", "url": "http://example.org/Questionnaire/q"}


async def test_a_caching_repository_reads_and_parses_each_version_once(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        created = await ResourceRepository(connection).create("Questionnaire", FORM)
        repository = ResourceRepository(connection, cache_reads=True)
        first = await repository.read("Questionnaire", created.id)
        assert first is not None
        assert await repository.read("Questionnaire", created.id) is first
        assert repository.parsed(first) is repository.parsed(first)
        assert repository.parsed(first)["url"] == FORM["url"]
        # A write through the repository drops what it read: the next read sees the new version.
        await repository.update("Questionnaire", created.id, {**FORM, "id": created.id, "status": "retired"})
        second = await repository.read("Questionnaire", created.id)
        assert second is not None
        assert repository.parsed(second)["status"] == "retired"


async def test_a_plain_repository_hands_out_a_fresh_copy_each_time(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        repository = ResourceRepository(connection)
        created = await repository.create("Questionnaire", FORM)
        found = await repository.read("Questionnaire", created.id)
        assert found is not None
        assert repository.parsed(found) == repository.parsed(found)
        assert repository.parsed(found) is not repository.parsed(found)
