"""Settings, read once from the environment when the app is built.

`DATABASE_URL`, `PORT` and `DATA_DIR` are read without a prefix because they are the names the README and
the Makefile use; every other setting carries the `IPT_FHIR_` prefix.
"""

from functools import cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IPT_FHIR_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "IPT_FHIR_DATABASE_URL"),
        description="PostgreSQL URL; unset means an embedded PostgreSQL under DATA_DIR.",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias=AliasChoices("DATA_DIR", "IPT_FHIR_DATA_DIR"),
        description="Where the embedded PostgreSQL keeps its data.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the server listens on.")
    port: int = Field(
        default=8080,
        validation_alias=AliasChoices("PORT", "IPT_FHIR_PORT"),
        description="Port the server listens on.",
    )
    base_url: str | None = Field(
        default=None,
        description="Public base URL of the FHIR endpoint (e.g. https://fhir.example.org/fhir); "
        "unset means it is derived from each request.",
    )
    default_page_size: int = Field(default=20, ge=1, description="Entries per page when _count is absent.")
    max_page_size: int = Field(default=500, ge=1, description="Largest _count honoured.")
    db_pool_size: int = Field(
        default=20,
        ge=1,
        description="Database connections a worker process keeps open; as many again are opened under load "
        "and closed after use.",
    )
    load_content_on_start: bool = Field(
        default=True, description="Load the IPT worksheets, terminology and protocol when the service starts."
    )
    jwt_issuer: str = Field(default="ipt-fhir-dev", description="Required `iss` of bearer tokens.")
    jwt_audience: str = Field(default="ipt-fhir", description="Required `aud` of bearer tokens.")
    jwks_file: Path | None = Field(
        default=None, description="JWKS file with the RS256/ES256 keys that sign tokens."
    )
    jwks_url: str | None = Field(
        default=None, description="JWKS URL with the keys that sign tokens (cached)."
    )
    jwks_refresh_cooldown: float = Field(
        default=30.0, ge=0, description="Seconds between JWKS re-fetches triggered by an unknown key id."
    )
    token_recheck_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a verified token's claims are reused before its signature is checked again "
        "(never past its expiry); 0 checks every request.",
    )
    token_cache_size: int = Field(default=10_000, ge=0, description="Most verified tokens kept at once.")
    jwt_secret: str | None = Field(
        default=None,
        description="HS256 secret for local development; unset (and no JWKS) means one kept under DATA_DIR.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins (portals) allowed to call the API from a browser."
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Largest request body.")
    max_bundle_entries: int = Field(
        default=1000, ge=1, description="Most entries a batch or transaction Bundle may hold (413 beyond)."
    )
    audit_flush_interval: float = Field(
        default=0.2,
        gt=0,
        description="Seconds between writes of the buffered AuditEvents of reads, searches and refusals: "
        "about what a crash may lose of them.",
    )
    audit_flush_events: int = Field(
        default=256,
        ge=1,
        description="Buffered AuditEvents that are written at once, before the interval ends.",
    )
    audit_buffer_max_events: int = Field(
        default=10_000,
        ge=1,
        description="Most AuditEvents held while the database does not take them; beyond, the oldest are "
        "dropped and their ids logged.",
    )


@cache
def get_settings() -> Settings:
    return Settings()
