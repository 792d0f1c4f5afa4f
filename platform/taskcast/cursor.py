"""Resume positions on reliable layers, and the opaque cursor string clients hold.

A position is ``(epoch, id, seq)`` in one group's history: the epoch names the history's life (a
history lost with its data starts a new one), the id names the entry in the layer's own terms
(opaque here: the layer that made it checks it, see ``ChannelLayer.check_position``), and seq
counts the group's messages (1, 2, …), so that a missing one shows. A connection's cursor holds
its position in every reliable group it belongs to.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["BEGINNING", "Position", "decode_cursor", "encode_cursor"]

# A backend's epoch and entry id: short and plain (they travel in URLs).
_TOKEN = re.compile(r"[0-9A-Za-z_.:~-]{1,64}")
_SEQ = re.compile(r"\d{1,19}")
_I64 = 2**63  # message numbers count in a signed 64-bit hash field
_FIELD, _RECORD = "\x1f", "\x1e"
MAX_CURSOR_LENGTH = 4096


class Position(NamedTuple):
    epoch: str
    id: str
    seq: int


# Before anything a group ever kept: joining with it replays all that is retained.
BEGINNING = Position("-", "0-0", 0)


def encode_cursor(positions: Mapping[str, Position]) -> str:
    raw = _RECORD.join(
        _FIELD.join((group, p.epoch, p.id, str(p.seq))) for group, p in positions.items()
    )
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Position]:
    """The positions in ``cursor``; ``ValueError`` when it is not one this module made."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise ValueError("cursor is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("cursor is not valid") from None
    positions: dict[str, Position] = {}
    for record in raw.split(_RECORD):
        fields = record.split(_FIELD)
        if len(fields) != 4 or not fields[0] or not _TOKEN.fullmatch(fields[1]):
            raise ValueError("cursor is not valid")
        if (
            not _TOKEN.fullmatch(fields[2])
            or not _SEQ.fullmatch(fields[3])
            or int(fields[3]) >= _I64
        ):
            raise ValueError("cursor is out of range")
        positions[fields[0]] = Position(fields[1], fields[2], int(fields[3]))
    return positions
