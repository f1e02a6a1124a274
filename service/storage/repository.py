"""The only code that reads and writes resources in SQL.

Every method runs on a connection whose transaction the caller (an interaction) owns. Content travels as
JSON text both ways: writes bind the orjson bytes the service produced, reads return PostgreSQL's text of
the `jsonb` value, so no resource is parsed into a model on its way out.

Every write passes here, so here a write of an audited request is noted, and the request's AuditEvent is
written in the same transaction just before it commits (`audit_writes_in_their_transaction`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.errors import Conflict, Issue, PreconditionFailed
from service.fhir.access import (
    AUDIT_EVENT,
    Principal,
    compartment_restriction,
    confined_type,
    current_access,
    current_reach,
)
from service.fhir.audit import AuditContext, current_audit_context
from service.fhir.compartment import ensure_visible, ensure_writable, visible
from service.fhir.labels import labelled
from service.fhir.registry import patient_compartment
from service.storage.indexing import delete_indexes
from service.storage.indexing.rows import (
    INDEX_TABLES,
    index_rows,
    indexed_values,
    search_reference,
    search_token,
    search_uri,
)
from service.storage.tables import resource_versions, resources
from service.storage.visibility import current_compartment_filter, current_reach_filter

Method = Literal["POST", "PUT", "DELETE"]
Key = tuple[str, str]

# How many referrers a refused delete names: enough to act on, without listing a whole compartment.
REFERRER_SAMPLE = 5
# Records of what happened keep naming what they named after it is deleted, so they never block a delete.
RECORD_TYPES = ("AuditEvent", "Provenance")
# Stands for a referrer the current request may not see: it still blocks the delete, but is not named.
_UNSEEN: Key = ("", "")


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of a resource as stored; `content` is its JSON text (None once deleted)."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: bytes | None
    created: bool = False
    changed: bool = True


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    method: Method
    version: StoredVersion
    patient_id: str | None = None


def _versions_visible(types: Sequence[str]) -> list[Any]:
    """The access decision over the version rows of `types`: each version by its own compartment."""
    columns = {
        "type_column": resource_versions.c.resource_type,
        "patient_column": resource_versions.c.patient_id,
    }
    return [*current_reach_filter(types, "r", **columns), *current_compartment_filter(types, **columns)]


_CONTENT_TEXT = cast(resources.c.content, Text)
_VERSION_CONTENT_TEXT = cast(resource_versions.c.content, Text)
_SERVER_META = ("versionId", "lastUpdated")


def new_id() -> str:
    return str(uuid.uuid4())


def _stamp(
    content: dict[str, Any], resource_id: str, version_id: int, at: datetime
) -> tuple[dict[str, Any], bytes]:
    # Every write path passes here, so no clinical resource is stored without its labels.
    content = labelled(content["resourceType"], content)
    meta = dict(content.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # resourceType first: readers of raw JSON expect it there.
    stamped = {"resourceType": content["resourceType"], "id": resource_id, "meta": meta}
    stamped.update((k, v) for k, v in content.items() if k not in stamped)
    stamped["meta"] = meta
    stamped["id"] = resource_id
    return stamped, orjson.dumps(stamped)


def _same_content(stored_text: str | None, incoming: dict[str, Any]) -> bool:
    if stored_text is None:
        return False
    stored = orjson.loads(stored_text)
    return _comparable(stored) == _comparable(incoming)


def _comparable(content: dict[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in content.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in (content.get("meta") or {}).items() if k not in _SERVER_META}
    if meta:
        result["meta"] = meta
    return result


def _version_key(version: object) -> tuple[tuple[int, int | str], ...]:
    """Orders business versions: numeric parts numerically (1.10.0 after 1.9.0), others as text."""
    parts = str(version or "").replace("-", ".").split(".")
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts)


def _index_inserts() -> list[Any]:
    """An INSERT per index table, of the rows given as one array parameter per column (`_index_arrays`)."""
    inserts = []
    for table in INDEX_TABLES:
        columns = _INDEX_VALUE_COLUMNS[table]
        arrays = [bindparam(f"{table.name}_{name}", type_=ARRAY(table.c[name].type)) for name in columns]
        values = func.unnest(*arrays).table_valued(*columns).render_derived(f"{table.name}_values")
        inserts.append(insert(table).from_select(columns, select(*(values.c[name] for name in columns))))
    return inserts


def _index_arrays(rows: dict[Any, list[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    return {
        f"{table.name}_{column}": [row[position] for row in rows.get(table, ())]
        for table in INDEX_TABLES
        for position, column in enumerate(_INDEX_VALUE_COLUMNS[table])
    }


def _one_statement(writes: list[Any]) -> Any:
    # Data-modifying CTEs all run, against one snapshot, whether or not the outer query reads their rows.
    ctes = [item.returning(literal(1)).cte(f"written_{n}") for n, item in enumerate(writes)]
    return union_all(*(select(cte.c[0]) for cte in ctes)).limit(0)


_ROW = {
    "resource_type": bindparam("resource_type", type_=Text),
    "id": bindparam("id", type_=Text),
    "last_updated": bindparam("last_updated", type_=DateTime(timezone=True)),
    "deleted": False,
    "patient_id": bindparam("patient_id", type_=Text),
    "content": cast(bindparam("body", type_=Text), JSONB),
}


def _create_parameters(
    resource_type: str, resource_id: str, content: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], bytes]:
    """The parameters of `_CREATE` for version 1 of a resource, and its stored JSON."""
    stamped, body = _stamp(content, resource_id, 1, now)
    patient_id = patient_compartment(resource_type, resource_id, content)
    rows = index_rows(resource_type, resource_id, indexed_values(stamped), patient_id=patient_id)
    parameters = {
        "resource_type": resource_type,
        "id": resource_id,
        "last_updated": now,
        "patient_id": patient_id,
        "body": body.decode(),
        **_index_arrays(rows),
    }
    return parameters, body


def _create_statement() -> Any:
    """One statement writing a new resource, its first version and all its index rows.

    Its text is the same for every resource (the index rows travel as arrays, unnested), so it is compiled
    and prepared once per connection; every request's AuditEvent is written with it, in one round trip.
    """
    row = {**_ROW, "version_id": 1}
    return _one_statement(
        [
            insert(resources).values(row),
            insert(resource_versions).values({**row, "method": "POST"}),
            *_index_inserts(),
        ]
    )


def _first_version_statement() -> Any:
    """The history row and the index rows of a resource whose current row was just inserted (a PUT that
    creates): the rest of `_CREATE`, once `_INSERT_IF_ABSENT` has claimed the id."""
    row = {**_ROW, "version_id": 1, "method": bindparam("method", type_=Text)}
    return _one_statement([insert(resource_versions).values(row), *_index_inserts()])


def _update_statement() -> Any:
    """One statement writing a new version of a resource whose current row the caller has locked: the
    current row, the history row, and its index rows replaced.

    The deletes and the inserts of index rows share one snapshot, so the deletes see only the old rows.
    """
    # Not `resource_type` and `id`: SQLAlchemy adds a parameter named after a column of the updated table to
    # the SET clause.
    of_type, of_id = bindparam("of_type", type_=Text), bindparam("of_id", type_=Text)
    settable = {k: v for k, v in _ROW.items() if k not in ("resource_type", "id")}
    settable["version_id"] = bindparam("version_id", type_=Integer)
    current = update(resources).where(resources.c.resource_type == of_type, resources.c.id == of_id)
    version = insert(resource_versions).values(
        {**settable, "resource_type": of_type, "id": of_id, "method": bindparam("method", type_=Text)}
    )
    deletes = [
        delete(table).where(table.c.resource_type == of_type, table.c.resource_id == of_id)
        for table in INDEX_TABLES
    ]
    return _one_statement([current.values(settable), version, *deletes, *_index_inserts()])


_INDEX_VALUE_COLUMNS = {table: [column.name for column in table.columns] for table in INDEX_TABLES}
# The columns `create_many` COPYs, in the order of its rows.
_CURRENT_COLUMNS = ("resource_type", "id", "version_id", "last_updated", "deleted", "patient_id", "content")
_VERSION_COLUMNS = (
    "resource_type",
    "id",
    "version_id",
    "last_updated",
    "deleted",
    "method",
    "patient_id",
    "content",
)


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """A statement of fixed text, compiled once for asyncpg and run on the driver connection.

    SQLAlchemy processes every parameter of every execution, and `_CREATE`, `_UPDATE` and `_FIRST_VERSION`
    have about sixty, most of them arrays: that cost half of a create's CPU (530 against 280 µs for an
    AuditEvent, which every request writes). The values given here are ones asyncpg encodes as they are:
    str, int, bool, datetime, Decimal, None and lists of them.
    """

    sql: str
    names: tuple[str, ...]
    # The statement's own literals (`version_id` 1, `deleted` false ...), under SQLAlchemy's names.
    literals: dict[str, Any]

    @classmethod
    def compile(cls, statement: Any) -> _DriverStatement:
        compiled = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        names = tuple(compiled.positiontup or ())
        literals = {name: value for name, value in compiled.params.items() if value is not None}
        return cls(compiled.string, names, literals)

    def arguments(self, parameters: dict[str, Any]) -> list[Any]:
        return [parameters[name] if name in parameters else self.literals[name] for name in self.names]


_CREATE = _DriverStatement.compile(_create_statement())
_UPDATE = _DriverStatement.compile(_update_statement())
_INSERT_IF_ABSENT = (
    pg_insert(resources).values({**_ROW, "version_id": 1}).on_conflict_do_nothing().returning(resources.c.id)
)
_FIRST_VERSION = _DriverStatement.compile(_first_version_statement())


def _stored_version_columns(table: Any, content: Any) -> tuple[Any, ...]:
    """What `_visible_version` reads of a row of `resources` or `resource_versions`."""
    c = table.c
    return (
        c.resource_type,
        c.id,
        c.version_id,
        c.last_updated,
        c.deleted,
        c.patient_id,
        content.label("content"),
    )


# Reads by key, built once: building a statement costs more CPU than PostgreSQL spends answering it, and
# these run on every read, every write rule that follows a reference and every canonical lookup.
_CURRENT_ROW = select(*_stored_version_columns(resources, _CONTENT_TEXT)).where(
    resources.c.resource_type == bindparam("resource_type", type_=Text),
    resources.c.id == bindparam("id", type_=Text),
)
_CURRENT_ROW_FOR_UPDATE = _CURRENT_ROW.with_for_update()
# As `existing` locks what a write refers to: a concurrent delete waits, other readers and referrers do not.
_CURRENT_ROW_KEY_SHARE = _CURRENT_ROW.with_for_update(read=True, key_share=True)
_VERSION_ROW = select(*_stored_version_columns(resource_versions, _VERSION_CONTENT_TEXT)).where(
    resource_versions.c.resource_type == bindparam("resource_type", type_=Text),
    resource_versions.c.id == bindparam("id", type_=Text),
    resource_versions.c.version_id == bindparam("version_id", type_=Integer),
)


def _canonical_statements() -> tuple[Any, Any]:
    """The live resources of a type whose `url` search value is `:url`; the second also needs the `version`
    search value `:version`."""
    url_rows = search_uri.alias("url_rows")
    by_url = (
        select(*_stored_version_columns(resources, _CONTENT_TEXT))
        .join(
            url_rows,
            and_(
                url_rows.c.resource_type == resources.c.resource_type,
                url_rows.c.resource_id == resources.c.id,
            ),
        )
        .where(
            url_rows.c.resource_type == bindparam("resource_type", type_=Text),
            url_rows.c.param == "url",
            url_rows.c.uri == bindparam("url", type_=Text),
            resources.c.deleted.is_(False),
        )
    )
    version_rows = search_token.alias("version_rows")
    by_url_and_version = by_url.join(
        version_rows,
        and_(
            version_rows.c.resource_type == resources.c.resource_type,
            version_rows.c.resource_id == resources.c.id,
            version_rows.c.param == "version",
            version_rows.c.code == bindparam("version", type_=Text),
        ),
    )
    return by_url, by_url_and_version


_BY_URL, _BY_URL_AND_VERSION = _canonical_statements()
_NOTHING = select(literal(1))
# The keys travel as two arrays, not a parameter per key: a resource may name tens of thousands of others,
# beyond the driver's 32767 bind parameters (and PostgreSQL's stack, for an IN list of that many rows).
_WANTED_KEYS = (
    func.unnest(bindparam("types", type_=ARRAY(Text)), bindparam("ids", type_=ARRAY(Text)))
    .table_valued("resource_type", "id")
    .render_derived("wanted_keys")
)
# Locked in key order, so that two transactions checking overlapping keys cannot deadlock.
_LIVE_KEYS = (
    select(resources.c.resource_type, resources.c.id)
    .where(
        tuple_(resources.c.resource_type, resources.c.id).in_(
            select(_WANTED_KEYS.c.resource_type, _WANTED_KEYS.c.id)
        ),
        resources.c.deleted.is_(False),
    )
    .order_by(resources.c.resource_type, resources.c.id)
    # `read=True`: without it SQLAlchemy renders FOR NO KEY UPDATE, which serialises every writer naming
    # the same resource (and its own updates) instead of only its deletion.
    .with_for_update(read=True, key_share=True)
)


def _seen_only(statement: Select[Any], table: Table, resource_type: str) -> Select[Any]:
    """`statement` (on `table`'s rows of `resource_type`) without what the current request may not see: a
    row of another patient's compartment is then not fetched at all, and its absence takes the time of a row
    that never existed. `_visible_version` still checks the row that comes back."""
    confined = current_compartment_filter(
        {resource_type}, type_column=table.c.resource_type, patient_column=table.c.patient_id
    )
    return statement.where(*confined) if confined else statement


def _visible_version(row: Any) -> StoredVersion | None:
    """The version in `row`, or None when there is none or the current request may not see it: a resource
    of another patient's compartment is, to a patient-context token, a resource that does not exist."""
    if row is None or not visible(row.resource_type, row.patient_id):
        return None
    return _version(row, content=row.content)


def _version(row: Any, *, content: str | None) -> StoredVersion:
    return StoredVersion(
        resource_type=row.resource_type,
        id=row.id,
        version_id=row.version_id,
        last_updated=row.last_updated,
        deleted=row.deleted,
        content=content.encode() if content is not None else None,
    )


class ResourceRepository:
    """Reads and writes resources, their history and their search indexes on one connection."""

    def __init__(self, connection: AsyncConnection, *, cache_reads: bool = False) -> None:
        """`cache_reads` keeps what `read` and `find_by_canonical` found for the rest of the transaction.

        For a transaction of many entries whose write rules look up the same Questionnaire and the same
        Patient a hundred times: each is read once. The repository's own writes drop what they change, and
        locking reads always go to the database; what other transactions commit meanwhile is not seen,
        as under a transaction-wide snapshot.
        """
        self.connection = connection
        # Live resources that a write of this transaction refers to, read and locked by `read_referenced`:
        # the reference check (`existing`) takes them as found instead of asking again.
        self._referenced: dict[Key, StoredVersion] = {}
        self._reads: dict[Key, StoredVersion | None] | None = {} if cache_reads else None
        self._canonicals: dict[Key, StoredVersion | None] | None = {} if cache_reads else None
        self._parsed: dict[tuple[str, str, int], dict[str, Any]] | None = {} if cache_reads else None

    def parsed(self, version: StoredVersion) -> dict[str, Any]:
        """The content of a live `version` as JSON.

        A repository that caches reads parses each version once (a hundred responses to one PHQ-9 would
        parse its 16 kB a hundred times each), so the result is shared: callers must not change it.
        """
        assert version.content is not None
        if self._parsed is None:
            content: dict[str, Any] = orjson.loads(version.content)
            return content
        key = (version.resource_type, version.id, version.version_id)
        if key not in self._parsed:
            self._parsed[key] = orjson.loads(version.content)
        return self._parsed[key]

    def _noted(self, version: StoredVersion) -> StoredVersion:
        """`version`, just written, noted for the AuditEvent its transaction records before it commits."""
        context = current_audit_context()
        if context is not None and version.resource_type != AUDIT_EVENT:
            _note_write(self.connection, context, version)
        return version

    def _forget(self, resource_type: str, resource_id: str) -> None:
        self._referenced.pop((resource_type, resource_id), None)
        if self._reads is not None:
            self._reads.pop((resource_type, resource_id), None)
        if self._canonicals is not None:
            for key in [key for key in self._canonicals if key[0] == resource_type]:
                del self._canonicals[key]

    async def read(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        """The current version, deleted or not; `None` when the resource never existed."""
        if self._reads is None:
            return await self._read(resource_type, resource_id)
        key = (resource_type, resource_id)
        if key not in self._reads:
            self._reads[key] = await self._read(resource_type, resource_id)
        return self._reads[key]

    async def read_referenced(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        """The current version of a resource that a write refers to (a response's subject), found as
        `existing` finds one: visible to the current request, and locked against deletion until the
        transaction ends. A live one is kept for the rest of the transaction, so that the write's reference
        check does not read it again, and a second rule asking for it reads nothing."""
        key = (resource_type, resource_id)
        if key in self._referenced:
            return self._referenced[key]
        parameters = {"resource_type": resource_type, "id": resource_id}
        statement = _seen_only(_CURRENT_ROW_KEY_SHARE, resources, resource_type)
        stored = _visible_version((await self.connection.execute(statement, parameters)).first())
        if stored is not None and not stored.deleted:
            self._referenced[key] = stored
        return stored

    async def _read(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        parameters = {"resource_type": resource_type, "id": resource_id}
        statement = _seen_only(_CURRENT_ROW, resources, resource_type)
        return _visible_version((await self.connection.execute(statement, parameters)).first())

    async def read_for_update(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        """The current version, locked until the transaction ends, for a read-modify-write such as PATCH."""
        parameters = {"resource_type": resource_type, "id": resource_id}
        return _visible_version((await self.connection.execute(_CURRENT_ROW_FOR_UPDATE, parameters)).first())

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredVersion | None:
        parameters = {"resource_type": resource_type, "id": resource_id, "version_id": version_id}
        statement = _seen_only(_VERSION_ROW, resource_versions, resource_type)
        return _visible_version((await self.connection.execute(statement, parameters)).first())

    async def create(
        self, resource_type: str, content: dict[str, Any], *, resource_id: str | None = None
    ) -> StoredVersion:
        """Insert version 1 of a new resource under a fresh UUID (or `resource_id`)."""
        resource_id = resource_id or new_id()
        ensure_writable(resource_type, resource_id, content)
        self._forget(resource_type, resource_id)
        now = datetime.now(UTC)
        parameters, body = _create_parameters(resource_type, resource_id, content, now)
        await self._run(_CREATE, parameters)
        return self._noted(StoredVersion(resource_type, resource_id, 1, now, False, body, created=True))

    async def create_many(self, items: Sequence[tuple[str, str, dict[str, Any]]]) -> list[StoredVersion]:
        """Insert version 1 of several new resources `(type, id, content)`: one COPY per table of the
        current, history and index rows.

        The same rows as `create` once per item, but a transaction of a hundred resources costs a handful
        of round trips instead of a hundred, and no SQL parameters: COPY sends the rows in PostgreSQL's
        binary format. The ids must be free, new (`new_id`) or found free by `stored_ids`; a clash still
        fails on the primary key and rolls the transaction back.
        """
        if not items:
            return []
        now = datetime.now(UTC)
        current_rows: list[tuple[Any, ...]] = []
        version_rows: list[tuple[Any, ...]] = []
        indexes: dict[Any, list[tuple[Any, ...]]] = {}
        stored = []
        for resource_type, resource_id, content in items:
            ensure_writable(resource_type, resource_id, content)
            self._forget(resource_type, resource_id)
            stamped, body = _stamp(content, resource_id, 1, now)
            patient_id = patient_compartment(resource_type, resource_id, content)
            text = body.decode()
            current_rows.append((resource_type, resource_id, 1, now, False, patient_id, text))
            version_rows.append((resource_type, resource_id, 1, now, False, "POST", patient_id, text))
            values = indexed_values(stamped)
            for table, rows in index_rows(resource_type, resource_id, values, patient_id=patient_id).items():
                indexes.setdefault(table, []).extend(rows)
            stored.append(StoredVersion(resource_type, resource_id, 1, now, False, body, created=True))
        for version in stored:
            self._noted(version)
        driver = await self._driver_in_transaction()
        await driver.copy_records_to_table(resources.name, records=current_rows, columns=_CURRENT_COLUMNS)
        await driver.copy_records_to_table(
            resource_versions.name, records=version_rows, columns=_VERSION_COLUMNS
        )
        for table, rows in indexes.items():
            await driver.copy_records_to_table(table.name, records=rows, columns=_INDEX_VALUE_COLUMNS[table])
        return stored

    async def _run(self, statement: _DriverStatement, parameters: dict[str, Any]) -> None:
        driver = await self._driver_in_transaction()
        await driver.execute(statement.sql, *statement.arguments(parameters))

    async def _driver_in_transaction(self) -> Any:
        """The asyncpg connection under `connection`, inside the caller's transaction if it has one (not
        on an AUTOCOMMIT connection), for COPY and `_DriverStatement`s."""
        raw = await self.connection.get_raw_connection()
        adapted, driver = raw.dbapi_connection, raw.driver_connection
        assert adapted is not None
        assert driver is not None
        if not adapted.autocommit and not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs itself; a COPY on the
            # driver before that would commit on its own, outside the caller's transaction.
            await self.connection.execute(_NOTHING)
        return driver

    async def update(
        self,
        resource_type: str,
        resource_id: str,
        content: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> StoredVersion:
        """Write a new version, or create the resource under `resource_id` if it does not exist.

        The current row is locked first, so concurrent writers of one resource queue up and each sees the
        version written before it: versions stay 1..n with no gap, and a stale `if_match` fails.
        """
        self._forget(resource_type, resource_id)
        current = await self._lock_current(resource_type, resource_id)
        if current is not None:
            ensure_visible(resource_type, resource_id, current.patient_id)
        elif confined_type(resource_type) and compartment_restriction() is not None:
            # A patient-context token does not create by PUT: an unused id and one of another compartment
            # must answer alike, or the answer would tell which ids other patients' records have.
            ensure_visible(resource_type, resource_id, None)
        ensure_writable(resource_type, resource_id, content)
        if current is None:
            if if_match is not None:
                raise PreconditionFailed(
                    Issue(f"{resource_type}/{resource_id} does not exist, so If-Match cannot match")
                )
            created = await self._insert_if_absent(resource_type, resource_id, content)
            if created is not None:
                return self._noted(created)
            # Another transaction created it between our lock attempt and insert: queue behind it.
            current = await self._lock_current(resource_type, resource_id)
            assert current is not None
            ensure_visible(resource_type, resource_id, current.patient_id)
        if if_match is not None and if_match != current.version_id:
            raise PreconditionFailed(
                Issue(
                    f"If-Match names version {if_match} but the current version of "
                    f"{resource_type}/{resource_id} is {current.version_id}",
                    expression="If-Match",
                )
            )
        if not current.deleted and _same_content(current.content, labelled(resource_type, content)):
            return StoredVersion(
                resource_type,
                resource_id,
                current.version_id,
                current.last_updated,
                False,
                current.content.encode() if current.content else None,
                changed=False,
            )
        version_id = current.version_id + 1
        now = datetime.now(UTC)
        stamped, body = _stamp(content, resource_id, version_id, now)
        patient_id = patient_compartment(resource_type, resource_id, content)
        rows = index_rows(resource_type, resource_id, indexed_values(stamped), patient_id=patient_id)
        parameters: dict[str, Any] = {
            "of_type": resource_type,
            "of_id": resource_id,
            "version_id": version_id,
            "method": "PUT",
            "last_updated": now,
            "patient_id": patient_id,
            "body": body.decode(),
            **_index_arrays(rows),
        }
        await self._run(_UPDATE, parameters)
        return self._noted(
            StoredVersion(resource_type, resource_id, version_id, now, False, body, created=current.deleted)
        )

    async def delete(
        self,
        resource_type: str,
        resource_id: str,
        *,
        if_match: int | None = None,
        check_referrers: bool = True,
    ) -> StoredVersion | None:
        """Record a deletion as a new version without content; `None` if the resource never existed.

        A resource that others still reference is not deleted (409), unless `check_referrers` is False: a
        transaction passes False and calls `check_unreferenced` once all its entries are written.
        """
        self._forget(resource_type, resource_id)
        current = await self._lock_current(resource_type, resource_id)
        if current is None or not visible(resource_type, current.patient_id):
            return None
        if if_match is not None and if_match != current.version_id:
            raise PreconditionFailed(
                Issue(
                    f"If-Match names version {if_match} but the current version is {current.version_id}",
                    expression="If-Match",
                )
            )
        if check_referrers and not current.deleted:
            await self.check_unreferenced(resource_type, resource_id)
        if current.deleted:
            return StoredVersion(
                resource_type,
                resource_id,
                current.version_id,
                current.last_updated,
                True,
                None,
                changed=False,
            )
        version_id = current.version_id + 1
        now = datetime.now(UTC)
        await self.connection.execute(
            update(resources)
            .where(resources.c.resource_type == resource_type, resources.c.id == resource_id)
            .values(version_id=version_id, last_updated=now, deleted=True, content=null())
        )
        await self._append_version(
            resource_type, resource_id, version_id, now, "DELETE", current.patient_id, None
        )
        await delete_indexes(self.connection, resource_type=resource_type, resource_id=resource_id)
        return self._noted(StoredVersion(resource_type, resource_id, version_id, now, True, None))

    async def history(
        self,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: datetime | None = None,
        before_seq: int | None = None,
        types: Sequence[str],
        limit: int,
    ) -> list[HistoryEntry]:
        """Versions newest first, `limit` at most, older than `before_seq` (the keyset of the next page)."""
        table = resource_versions
        statement = select(
            table.c.seq,
            table.c.method,
            table.c.resource_type,
            table.c.id,
            table.c.version_id,
            table.c.last_updated,
            table.c.deleted,
            table.c.patient_id,
            _VERSION_CONTENT_TEXT.label("content"),
        )
        conditions = []
        if resource_type is not None:
            conditions.append(table.c.resource_type == resource_type)
        if resource_id is not None:
            conditions.append(table.c.id == resource_id)
        if since is not None:
            conditions.append(table.c.last_updated >= since)
        if before_seq is not None:
            conditions.append(table.c.seq < before_seq)
        conditions += _versions_visible(types)
        if resource_type is None:
            conditions.append(table.c.resource_type.in_(types))
        if conditions:
            statement = statement.where(and_(*conditions))
        statement = statement.order_by(table.c.seq.desc()).limit(limit)
        rows = (await self.connection.execute(statement)).all()
        return [
            HistoryEntry(row.seq, row.method, _version(row, content=row.content), row.patient_id)
            for row in rows
        ]

    async def find_by_canonical(self, resource_type: str, canonical: str) -> StoredVersion | None:
        """The resource whose `url` (and `version`, given as `url|version`) match; without a version, the
        highest one (https://hl7.org/fhir/R4/references.html#canonical)."""
        if self._canonicals is None:
            return await self._find_by_canonical(resource_type, canonical)
        key = (resource_type, canonical)
        if key not in self._canonicals:
            self._canonicals[key] = await self._find_by_canonical(resource_type, canonical)
        return self._canonicals[key]

    async def _find_by_canonical(self, resource_type: str, canonical: str) -> StoredVersion | None:
        url, _, version = canonical.partition("|")
        statement = _BY_URL_AND_VERSION if version else _BY_URL
        parameters = {"resource_type": resource_type, "url": url, "version": version}
        rows = (await self.connection.execute(statement, parameters)).all()
        if not rows:
            return None
        if len(rows) == 1:
            # The usual case, and always with a version given: no need to parse the content for its version.
            return _version(rows[0], content=rows[0].content)
        best = max(rows, key=lambda row: _version_key(orjson.loads(row.content).get("version")))
        return _version(best, content=best.content)

    async def stored_ids(self, resource_type: str, ids: Iterable[str]) -> set[str]:
        """Which of `ids` have a row, live, deleted or out of the request's sight: the rest are free for
        `create_many`."""
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        statement = select(resources.c.id).where(
            resources.c.resource_type == resource_type,
            resources.c.id == any_(bindparam("ids", type_=ARRAY(Text))),
        )
        return set((await self.connection.execute(statement, {"ids": wanted})).scalars())

    async def existing(self, keys: Iterable[Key]) -> set[Key]:
        """Which of `keys` are live (not deleted) resources the current request may see, each locked
        against deletion until commit.

        `FOR KEY SHARE` lets other readers and referrers through but makes a concurrent delete (which locks
        the row `FOR UPDATE` before it looks for referrers) wait for this transaction, so a reference that
        was checked cannot dangle once both have committed.
        """
        asked = set(keys)
        known = {key for key in asked if key in self._referenced}
        wanted = sorted(asked - known)
        if not wanted:
            return known
        statement = _LIVE_KEYS
        if confined := current_compartment_filter({key[0] for key in wanted}):
            statement = statement.where(*confined)
        types, ids = zip(*wanted, strict=True)
        rows = await self.connection.execute(statement, {"types": list(types), "ids": list(ids)})
        return known | {(row.resource_type, row.id) for row in rows}

    async def referrers(
        self, resource_type: str, resource_id: str, *, limit: int = REFERRER_SAMPLE
    ) -> list[Key]:
        """Up to `limit` other live resources whose indexed references point at `resource_type/resource_id`.

        Only references that a search parameter indexes are seen (`search_reference`), which covers every
        reference between the served clinical types (subject, patient, goal, careTeam, addresses ...).
        Audit records (`RECORD_TYPES`) are not referrers: they outlive what they name. A referrer the current
        request may not see is reported as `_UNSEEN`.
        """
        statement = (
            select(
                search_reference.c.resource_type,
                search_reference.c.resource_id,
                search_reference.c.patient_id,
            )
            .where(
                search_reference.c.target_type == resource_type,
                search_reference.c.target_id == resource_id,
                search_reference.c.url.is_(None),
                search_reference.c.resource_type.not_in(RECORD_TYPES),
                ~and_(
                    search_reference.c.resource_type == resource_type,
                    search_reference.c.resource_id == resource_id,
                ),
            )
            .distinct()
            .order_by(search_reference.c.resource_type, search_reference.c.resource_id)
            .limit(limit)
        )
        return [
            (row.resource_type, row.resource_id)
            if visible(row.resource_type, row.patient_id)
            and current_reach(row.resource_type, "r").admits(row.patient_id)
            else _UNSEEN
            for row in await self.connection.execute(statement)
        ]

    async def check_unreferenced(self, resource_type: str, resource_id: str) -> None:
        """Refuse (409) to delete a resource that others still reference, naming a few of them."""
        found = await self.referrers(resource_type, resource_id, limit=REFERRER_SAMPLE + 1)
        if not found:
            return
        names = ", ".join(
            f"{kind}/{key}" if (kind, key) != _UNSEEN else "a resource this token may not read"
            for kind, key in found[:REFERRER_SAMPLE]
        )
        more = " and others" if len(found) > REFERRER_SAMPLE else ""
        raise Conflict(
            Issue(
                f"{resource_type}/{resource_id} is still referenced by {names}{more}; "
                "delete or change those first",
                expression=resource_type,
                code="conflict",
            )
        )

    async def count_versions(self, resource_type: str, resource_id: str) -> int:
        """How many versions of the resource the current request may see (each judged by the compartment it
        was written in)."""
        statement = (
            select(func.count())
            .select_from(resource_versions)
            .where(
                resource_versions.c.resource_type == resource_type,
                resource_versions.c.id == resource_id,
                *_versions_visible([resource_type]),
            )
        )
        return int((await self.connection.execute(statement)).scalar_one())

    async def _lock_current(self, resource_type: str, resource_id: str) -> Any:
        parameters = {"resource_type": resource_type, "id": resource_id}
        return (await self.connection.execute(_CURRENT_ROW_FOR_UPDATE, parameters)).first()

    async def _insert_if_absent(
        self, resource_type: str, resource_id: str, content: dict[str, Any]
    ) -> StoredVersion | None:
        now = datetime.now(UTC)
        stamped, body = _stamp(content, resource_id, 1, now)
        patient_id = patient_compartment(resource_type, resource_id, content)
        row = {
            "resource_type": resource_type,
            "id": resource_id,
            "last_updated": now,
            "patient_id": patient_id,
            "body": body.decode(),
        }
        if (await self.connection.execute(_INSERT_IF_ABSENT, row)).first() is None:
            return None
        rows = index_rows(resource_type, resource_id, indexed_values(stamped), patient_id=patient_id)
        await self._run(_FIRST_VERSION, {**row, "method": "PUT", **_index_arrays(rows)})
        return StoredVersion(resource_type, resource_id, 1, now, False, body, created=True)

    async def _append_version(
        self,
        resource_type: str,
        resource_id: str,
        version_id: int,
        at: datetime,
        method: Method,
        patient_id: str | None,
        body: bytes | None,
    ) -> None:
        await self.connection.execute(
            insert(resource_versions).values(
                resource_type=resource_type,
                id=resource_id,
                version_id=version_id,
                last_updated=at,
                deleted=body is None,
                method=method,
                patient_id=patient_id,
                content=cast(literal(body.decode(), Text), JSONB) if body is not None else null(),
            )
        )


# --- A write's AuditEvent, in the write's own transaction ---------------------------------------------------


@dataclass(slots=True)
class _Writes:
    """What one open transaction of an audited request has written so far."""

    context: AuditContext
    principal: Principal | None
    entities: dict[str, None]
    created: bool


# Keyed by the transaction's connection, which lives no longer than its request.
_WRITES: WeakKeyDictionary[Connection, _Writes] = WeakKeyDictionary()


def _note_write(connection: AsyncConnection, context: AuditContext, version: StoredVersion) -> None:
    sync = connection.sync_connection
    assert sync is not None
    writes = _WRITES.get(sync)
    if writes is None:
        # Taken now, on the request's own task: the principal is the one whose access allowed the write.
        access = current_access()
        writes = _WRITES[sync] = _Writes(context, access.principal if access else None, {}, True)
    writes.entities[f"{version.resource_type}/{version.id}"] = None
    writes.created = writes.created and version.created


def _record_writes(connection: Connection) -> None:
    """Before a transaction commits: the AuditEvent of what it wrote for an audited request, one for the
    transaction (a transaction Bundle's names every resource it wrote), inserted on the same connection so
    that both commit or neither does."""
    writes = _WRITES.pop(connection, None)
    if writes is None:
        return
    context = writes.context
    event = context.event(
        status=context.write_status(created=writes.created),
        principal=writes.principal,
        entities=list(writes.entities),
    )
    parameters, _ = _create_parameters(AUDIT_EVENT, new_id(), event, datetime.now(UTC))
    arguments = _CREATE.arguments(parameters)
    adapted: Any = connection.connection.dbapi_connection
    # A synchronous event handler, run inside SQLAlchemy's greenlet: the driver is awaited through it.
    adapted.run_async(lambda driver: driver.execute(_CREATE.sql, *arguments))
    # If the COMMIT itself then fails, the interaction raises and the answer is an error, which the API
    # layer records whatever this says.
    context.recorded = True


def _forget_writes(connection: Connection) -> None:
    _WRITES.pop(connection, None)


def audit_writes_in_their_transaction(engine: AsyncEngine) -> None:
    """Make every transaction of `engine` that writes for an audited request commit the request's
    AuditEvent with its writes: no write without its record, no record of a write rolled back."""
    listen(engine.sync_engine, "commit", _record_writes)
    listen(engine.sync_engine, "rollback", _forget_writes)
