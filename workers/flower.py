"""``python -m workers.flower``: Flower for the workers, with its port, address and basic auth
from the settings (``TASKCAST_FLOWER_PORT``, ``HOST``, ``TASKCAST_FLOWER_USER``/``_PASSWORD``)."""

from __future__ import annotations

import os
import sys

from web.settings import Settings


def main() -> None:
    settings = Settings.load()
    auth = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    command = [sys.executable, "-m", "celery", "-A", "workers", "flower"]
    command += [f"--port={settings.flower_port}", f"--address={settings.host}"]
    command += [f"--basic-auth={auth}", "--persistent=False"]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
