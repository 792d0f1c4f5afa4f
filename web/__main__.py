"""``python -m web``: serve the web tier with uvicorn, configured from the settings."""

from __future__ import annotations

import uvicorn

from .settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "web.app:create_app",
        factory=True,
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
    )


if __name__ == "__main__":
    main()
