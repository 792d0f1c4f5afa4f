"""python -m taskcast: watch a Taskcast endpoint, or send it one frame.

    python -m taskcast tail ws://host/ws/reliable [--cursor C] [--count N] [--json]
    python -m taskcast send ws://host/ws/system user_message '{"message": "hi"}'
    python -m taskcast send ws://host/ws/chat chat '{"message": "hi"}' --no-reply

``tail`` prints each frame as it arrives (one JSON object a line; a readable line on a
terminal), reconnecting and resuming across disconnects (connection news on stderr, and the last
cursor when it stops: give it back with ``--cursor``). ``send`` sends one frame with a ``ref`` and
prints the reply; an action that only broadcasts has none: ``--no-reply``. A token comes from
``TASKCAST_TOKEN``, never the command line (where ``ps`` shows it). Exit status: 0, 1 an error
reply, 2 refused for good (4400, 4401, 4403, 1008) or a bad argument, 3 no reply in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from typing import Any

from .client import Client, Frame, Refused, RequestFailed, State

__all__ = ["main"]

NO_REPLY_WAIT = 1.0  # seconds send --no-reply waits for an error frame before it exits 0
# Control characters, lone surrogates (no terminal encoding takes one) and the line and bidi
# controls that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = asyncio.run(args.run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, SIGTERM
        return 0
    except BrokenPipeError:  # the reader went (| head): quietly, like any filter (before
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # ConnectionError: a
        return 0  # subclass of it)
    except Refused as refused:
        _say(f"refused: {refused}")
        return 2
    except ValueError as bad:  # the URL, said without it
        _say(str(bad))
        return 2
    except ConnectionError as stopped:
        _say(str(stopped))
        return 3
    return status


async def tail(args: argparse.Namespace) -> int:
    readable = not args.json and sys.stdout.isatty()
    client = _client(args)
    task = asyncio.current_task()
    if task is not None:  # SIGTERM (`timeout`, a supervisor) stops it as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    last = client.cursor  # the newest printed (frames received but not printed come again)
    try:
        async with client:
            seen = 0
            async for frame in client:
                print(_printable(_readable(frame) if readable else frame.as_json()), flush=True)
                last = frame.cursor or last
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
    finally:  # Ctrl-C too: where to resume from
        if last:
            _say(f"last cursor: {last}")
    return 0


async def send(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        _say(f"PAYLOAD is not JSON: {exc}")
        return 2
    async with _client(args) as client:
        try:
            await client.wait_open(args.timeout)
        except TimeoutError:
            _say(f"not connected within {args.timeout:g} s")
            return 3
        # With --no-reply no reply comes, but an error would (a mistyped action, a payload
        # refused): it waits a moment for one.
        wait = min(args.timeout, NO_REPLY_WAIT) if args.no_reply else args.timeout
        try:
            reply = await client.request(args.action, payload, timeout=wait)
        except RequestFailed as failed:
            print(_printable(failed.frame.as_json()), flush=True)
            return 1
        except TimeoutError:
            if args.no_reply:
                return 0
            _say(f"no reply within {args.timeout:g} s")
            return 3
        except ConnectionError as lost:
            _say(f"no reply: {lost}")
            return 3
    print(_printable(reply.as_json()), flush=True)
    return 0


def _client(args: argparse.Namespace) -> Client:
    return Client(
        args.url,
        token=os.environ.get("TASKCAST_TOKEN") or None,
        cursor=getattr(args, "cursor", None),
        on_state=_said,
        backoff=(0.25, args.max_backoff),
    )


def _said(state: State, details: dict[str, Any]) -> None:
    if state == "reconnecting" and "delay" in details:
        why = f"closed {details['code']}{': ' + details['reason'] if details['reason'] else ''}"
        _say(f"{why}; again in {details['delay']:.1f} s")
    elif state == "open":
        _say("connected")


def _say(text: str) -> None:
    print(f"taskcast: {_printable(text)}", file=sys.stderr, flush=True)


def _printable(text: str) -> str:
    """``text`` with control characters (a server's escape sequences could clear a terminal or
    retitle it) and lone surrogates as ``\\u`` escapes, which a JSON line reads back as the same
    characters."""
    return _CONTROL.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def _readable(frame: Frame) -> str:
    when = ""
    if frame.sent_at is not None:
        try:
            when = frame.sent_at.astimezone().strftime("%H:%M:%S")
        except (OverflowError, ValueError, OSError):
            when = frame.sent_at.isoformat()
    payload = json.dumps(frame.payload, ensure_ascii=False)
    marks = " (replayed)" if frame.replayed else ""
    return f"{when:8} {frame.action} {payload}{marks}".strip()


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("a whole number from 1")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taskcast", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    watch = commands.add_parser("tail", help="print an endpoint's frames as they arrive")
    watch.add_argument("url", help="ws:// or wss:// URL of the endpoint")
    watch.add_argument("--cursor", help="start from this position (a frame's cursor)")
    watch.add_argument("--count", type=_positive, help="stop after this many frames")
    watch.add_argument("--json", action="store_true", help="JSON lines even on a terminal")
    watch.set_defaults(run=tail)
    one = commands.add_parser("send", help="send one frame and print the reply")
    one.add_argument("url", help="ws:// or wss:// URL of the endpoint")
    one.add_argument("action")
    one.add_argument("payload", help="the payload, as JSON")
    one.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the reply (10)"
    )
    one.add_argument(
        "--no-reply", action="store_true", help="the action only broadcasts: send and exit"
    )
    one.set_defaults(run=send)
    for command in (watch, one):
        command.add_argument("--max-backoff", type=float, default=8.0, help=argparse.SUPPRESS)
    return parser
