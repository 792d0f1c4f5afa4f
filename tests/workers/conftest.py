from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from starlette.applications import Starlette

import workers.tasks  # noqa: F401 - registers the tasks on every app
from taskcast.testing import LiveServer
from web.app import create_app
from web.settings import Settings
from workers.app import create_celery


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    return Settings(redis_url=redis_url, key_prefix=key_prefix, celery_queue=f"{key_prefix}:tasks")


@pytest.fixture
def celery_app(settings: Settings) -> Celery:
    return create_celery(settings)


@pytest.fixture
def worker(celery_app: Celery) -> Iterator[None]:
    """A real worker, in-process (threads), on real Redis (celery.contrib.testing)."""
    with start_worker(
        celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
    ):
        yield


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def server(app: Starlette) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live
