"""The resource tables.

`resources` holds the current version of every resource (a deleted one keeps a row with `deleted = true`
and no content, so a read can answer 410 and a re-create continues the version sequence). `resource_versions`
holds every version ever written, append-only; `seq` orders all writes of the server, which gives history a
stable keyset to page on. `patient_id` is the patient compartment a row belongs to, so the clinical tables can
later be distributed by patient.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

resources = Table(
    "resources",
    metadata,
    Column("resource_type", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("patient_id", Text, nullable=True),
    Column("content", JSONB, nullable=True),
    PrimaryKeyConstraint("resource_type", "id"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column("resource_type", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("method", Text, nullable=False),
    Column("patient_id", Text, nullable=True),
    Column("content", JSONB, nullable=True),
    PrimaryKeyConstraint("resource_type", "id", "version_id"),
)

Index("ix_resource_versions_type_seq", resource_versions.c.resource_type, resource_versions.c.seq)
Index("ix_resources_type_last_updated", resources.c.resource_type, resources.c.last_updated, resources.c.id)
Index(
    "ix_resources_type_patient",
    resources.c.resource_type,
    resources.c.patient_id,
    postgresql_where=resources.c.patient_id.is_not(None),
)
