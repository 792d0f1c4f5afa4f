"""Publish system notices to /ws/reliable's room through Redis, as a worker would, so the Node
tests can publish while their server is down: ``python tests/js/publish.py TEXT...``. The
settings come from the environment (``REDIS_URL``, ``TASKCAST_KEY_PREFIX``)."""

from __future__ import annotations

import sys

from showcase import ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher


def main(texts: list[str]) -> None:
    settings = Settings()
    publisher = SyncPublisher.from_configs(settings.layer_configs(), settings.address_rules())
    for text in texts:
        publisher.publish(ReliableChatConsumer, SystemNotify(payload=text))


if __name__ == "__main__":
    main(sys.argv[1:])
