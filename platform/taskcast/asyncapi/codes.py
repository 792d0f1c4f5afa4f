"""What an ``error`` frame's ``code`` and a close code mean: the one list the page renders.

Texts use the page's markup (``markup.render_inline``); keep them in step with README's Errors.
"""

from __future__ import annotations

__all__ = ["CLOSE_CODES", "ERROR_CODES"]

ERROR_CODES: dict[str, str] = {
    "invalid_json": (
        "The text is not JSON (or is nested too deeply to parse, or has an unpaired surrogate"
        ' escape such as `"\\ud800"`, which no UTF-8 reply could carry).'
    ),
    "invalid_frame": "A binary frame.",
    "invalid_message": (
        "JSON that is not an object; no action, or one that is not a string; a `ref` that is not"
        " a string of at most 128 characters."
    ),
    "unknown_action": (
        "An action the endpoint does not take, including the server's own events"
        " (`system_notify`); the detail lists what it takes."
    ),
    "invalid_payload": (
        "The frame does not match the action's message type; `errors` lists each problem"
        " (location, message, type — never the input)."
    ),
    "internal_error": (
        "The handler failed; the server logs it with its traceback, the client learns nothing more."
    ),
    "rate_limited": (
        "More frames than `TASKCAST_RATE_PER_SECOND` allows (after `TASKCAST_RATE_BURST`);"
        " 20 in a row close the socket with 1008."
    ),
    "invalid_cursor": (
        "The `?cursor=` on the URL is not one this server gave, or names a position no stream can"
        " have (an id past 64 bits, a negative or out-of-range number); it is ignored: delivery"
        " is live from now (on a job's watcher, from the job's start)."
    ),
    "unavailable": "A layer's Redis could not be reached for this frame; try again shortly.",
}

CLOSE_CODES: dict[int, str] = {
    1001: (
        "Going away: the server is shutting down (SIGTERM or Ctrl-C). Reconnect; on a reliable"
        " endpoint, with your last cursor."
    ),
    1008: "Policy violation: 20 `rate_limited` frames in a row.",
    1009: "Message too big: a frame over `TASKCAST_MAX_FRAME_BYTES` (default 64 KiB).",
    1011: "Internal error: the connection itself failed.",
    1013: (
        "Try again later: Redis could not be reached to join the groups or to read a catch-up;"
        " the server is at `TASKCAST_MAX_CONNECTIONS`; or a client that stopped reading let"
        " replies overflow its send queue on a reliable layer (it resumes from its cursor)."
    ),
    4400: (
        "A URL value that may not name a group (a room name longer than"
        " `TASKCAST_MAX_GROUP_VALUE_CHARS`, 64, or with a character other than letters, marks,"
        " digits and `_ . ~ -`, or without a letter or digit); refused before anything is"
        " joined."
    ),
    4401: "Not signed in: no token, or an unknown one (an `authenticate` hook's refusal).",
    4403: "Forbidden: a token that does not open this path (an `authenticate` hook's refusal).",
}
