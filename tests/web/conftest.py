from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from taskcast import SyncPublisher
from taskcast.layers import InMemoryLayer
from taskcast.testing import LiveServer
from web.app import create_app
from web.settings import Settings


@pytest.fixture
def app() -> Starlette:
    return create_app(Settings())


@pytest.fixture
def server(app: Starlette) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def publisher(app: Starlette) -> SyncPublisher:
    """Publishes into the live server's layers from the test's thread, as outside code would."""
    layers = app.state.layers
    senders = {}
    for alias in layers:
        layer = layers[alias]
        assert isinstance(layer, InMemoryLayer)
        senders[alias] = layer.sync_sender()
    return SyncPublisher(senders)
