"""Request-scoped dependencies, as `Annotated` aliases the routes declare.

They are `async` though none awaits anything: FastAPI runs a plain `def` dependency in its thread pool, a
thread hand-off on every request for a few attribute reads.
"""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    if settings.base_url:
        return settings.base_url.rstrip("/")
    return f"{str(request.base_url).rstrip('/')}/fhir"


Engine = Annotated[AsyncEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
BaseUrl = Annotated[str, Depends(get_base_url)]
