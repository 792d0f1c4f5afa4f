from __future__ import annotations

import pytest

from showcase.settings import Settings
from taskcast import SyncPublisher


@pytest.fixture
def publisher(settings: Settings) -> SyncPublisher:
    """Publishes into the layers from the test's thread through Redis, as a worker would."""
    return SyncPublisher.from_configs(settings.layer_configs())
