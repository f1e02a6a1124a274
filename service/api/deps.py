"""What a route needs of the application, as plain calls on its request.

Not FastAPI dependencies: resolving a dependency costs every request a walk of the route's dependency
tree and an awaited call each, for what is one attribute read.
"""

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def base_url_of(request: Request) -> str:
    """The FHIR base URL: the configured one, or the one the request was sent to."""
    settings = settings_of(request)
    if settings.base_url:
        return settings.base_url.rstrip("/")
    return f"{str(request.base_url).rstrip('/')}/fhir"
