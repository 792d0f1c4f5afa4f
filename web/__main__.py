"""``python -m web``: serve the web tier with uvicorn, configured from the settings; with
``TASKCAST_WEB_PROCESSES`` above 1, that many processes on the port (see ``web.processes``).

On SIGTERM or SIGINT the sockets are closed first, with 1001 (going away), so that clients
reconnect elsewhere and resume from their cursors; then uvicorn stops as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
from types import FrameType

import uvicorn

from showcase.settings import Settings
from taskcast.logs import redact_server_logs

from .app import create_app
from .processes import Supervisor, processes_wanted
from .server import guarded_http


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app_state: object) -> None:
        super().__init__(config)
        self.app_state = app_state
        self.going_away: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.going_away is None and self.started:
            self.going_away = asyncio.get_running_loop().create_task(
                self.close_then_exit(sig, frame)
            )
        elif self.going_away is None or self.going_away.done():
            super().handle_exit(sig, frame)
        # else: closing already (a Ctrl-C reaches the supervisor and its processes alike)

    async def close_then_exit(self, sig: int, frame: FrameType | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.app_state.connections.close_all(), 5)  # type: ignore[attr-defined]
        super().handle_exit(sig, frame)


def raise_descriptor_limit() -> None:
    """Every socket is a file descriptor: take all the system allows (the soft limit, often
    1,024, up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    settings = Settings.load()
    try:
        count = processes_wanted(settings.web_processes)
    except ValueError as exc:
        raise SystemExit(f"taskcast: {exc}") from None
    if count > 1:
        try:
            settings.trusted_hosts()
            create_app(settings)  # what each process will do first: its errors, said once here
            supervisor = Supervisor(settings.host, settings.port, count)
        except (ValueError, OSError) as exc:
            raise SystemExit(f"taskcast: {exc}") from None
        raise SystemExit(supervisor.run())
    serve()


def serve(sockets: list[socket.socket] | None = None) -> None:
    """One web process: on ``sockets`` (SO_REUSEPORT ones, see web.processes), or on HOST:PORT."""
    settings = Settings.load()
    try:
        settings.trusted_hosts()
        app = create_app(settings)
    except ValueError as exc:
        raise SystemExit(f"taskcast: {exc}") from None
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws="websockets-sansio",
        # Frames over the limit are refused by the protocol layer (close 1009) before they are
        # read into memory; the consumer checks the same limit under any other server.
        ws_max_size=settings.max_frame_bytes,
        # Compression costs a deflate per frame per socket, the largest cost of a fan-out, and
        # saves little on small JSON frames. TASKCAST_WS_COMPRESSION=true turns it on.
        ws_per_message_deflate=settings.ws_compression,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        http=guarded_http(settings.handshake_timeout, settings.max_request_head_bytes),
    )
    raise_descriptor_limit()
    redact_server_logs()  # after uvicorn configured its loggers: no token or cursor logged
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        Server(config, app.state).run(sockets=sockets)


if __name__ == "__main__":
    main()
