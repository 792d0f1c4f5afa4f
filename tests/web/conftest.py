from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from taskcast import SyncPublisher
from taskcast.testing import LiveServer
from web.app import create_app
from web.settings import Settings


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    return Settings(redis_url=redis_url, key_prefix=key_prefix, celery_queue=f"{key_prefix}:tasks")


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def server(app: Starlette) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def publisher(settings: Settings) -> SyncPublisher:
    """Publishes into the layers from the test's thread through Redis, as a worker would."""
    return SyncPublisher.from_configs(settings.layer_configs())
