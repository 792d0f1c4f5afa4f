from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

import workers.tasks  # noqa: F401 - registers the tasks on every app
from web.settings import Settings
from workers.app import create_celery


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
