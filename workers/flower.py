"""``python -m workers.flower``: Flower for the workers, with its port and address from the
settings (``TASKCAST_FLOWER_PORT``, ``TASKCAST_FLOWER_HOST`` or else ``HOST``) and basic auth
from ``TASKCAST_FLOWER_USER`` / ``TASKCAST_FLOWER_PASSWORD``.

Flower can run any task and shut workers down, so there is no default password: without one it
listens on loopback only (and says so); asked to listen anywhere else without one, it refuses to
start. The password goes to Flower through its environment (``FLOWER_BASIC_AUTH``), never on the
command line, where ``ps`` would show it to every user of the machine.
"""

from __future__ import annotations

import os
import sys

from showcase.settings import Settings, loopback


def main() -> None:
    settings = Settings.load()
    host = settings.flower_host or settings.host
    env = {key: value for key, value in os.environ.items() if key != "FLOWER_BASIC_AUTH"}
    if settings.flower_password is not None:
        password = settings.flower_password.get_secret_value()
        env["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    elif loopback(host):
        print(
            f"Flower on {host}:{settings.flower_port} without a password: loopback only "
            "(set TASKCAST_FLOWER_PASSWORD to listen elsewhere)",
            file=sys.stderr,
            flush=True,
        )
    else:
        raise SystemExit(
            f"taskcast: Flower would listen on {host} without a password, and anyone who "
            "reaches it can run any task: set TASKCAST_FLOWER_PASSWORD, or "
            "TASKCAST_FLOWER_HOST=127.0.0.1"
        )
    command = [sys.executable, "-m", "celery", "-A", "workers", "flower"]
    command += [f"--port={settings.flower_port}", f"--address={host}"]
    command += ["--persistent=False"]
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()
