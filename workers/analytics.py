"""The analytics counts: bounded in names and in time.

Events are counted by name in time buckets, each a Redis hash covering 1/12 of the window and
expiring once the window has passed it, so nothing is kept without an expiry and the counts
roll. A bucket holds at most ``max_names`` distinct names; later ones are counted as
``OTHER``. A summary merges the buckets inside the window, keeps the ``max_names`` most
counted names and lumps the rest into ``OTHER``: its size is bounded by ``max_names`` times
the longest name allowed, whatever clients send.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import cast

import redis

OTHER = "(other)"  # the event name pattern has no parentheses: no client can send it
BUCKETS = 12

# One atomic step, so that concurrent workers never put a bucket past max_names.
# KEYS[1] the bucket; ARGV: name, max names, OTHER, the bucket's expiry (Unix ms).
_RECORD = """
local name = ARGV[1]
if redis.call('HEXISTS', KEYS[1], name) == 0 then
  local names = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], ARGV[3])
  if names >= tonumber(ARGV[2]) then name = ARGV[3] end
end
redis.call('HINCRBY', KEYS[1], name, 1)
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return name
"""

# The last summary taken, as "<digest> <task id>", compared and replaced in one step so that two
# summaries never both see one change. An unchanged summary leaves it as it is (a task retried
# after its publish failed still finds its own id), and it expires after a window: an unchanged
# summary is broadcast again at most once a window.
# KEYS[1] the summary key; ARGV: digest, task id, expiry (s). Returns 1: changed, 0: unchanged.
_COMPARE_AND_SET = """
local mine = ARGV[1] .. ' ' .. ARGV[2]
local last = redis.call('GET', KEYS[1])
if last == mine then return 1 end
if last and string.sub(last, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then return 0 end
redis.call('SET', KEYS[1], mine, 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    changed: bool


class AnalyticsCounts:
    """The counts under ``prefix`` (``<key prefix>:analytics``), over ``window`` seconds."""

    def __init__(self, store: redis.Redis, prefix: str, window: int, max_names: int) -> None:
        self.store = store
        self.prefix = prefix
        self.window = window
        self.width_ms = max(1, window * 1000 // BUCKETS)
        self.max_names = max_names
        self._record = store.register_script(_RECORD)
        self._compare_and_set = store.register_script(_COMPARE_AND_SET)

    def _bucket(self, index: int) -> str:
        return f"{self.prefix}:counts:{index}"

    def record(self, name: str, now: float | None = None) -> str:
        """Count one event; returns the name it was counted under (``name`` or ``OTHER``)."""
        ms = int((time.time() if now is None else now) * 1000)
        index = ms // self.width_ms
        # Bucket i is read while it is one of the latest BUCKETS: until bucket i + BUCKETS starts.
        expires = (index + BUCKETS) * self.width_ms
        args: list[str | int] = [name, self.max_names, OTHER, expires]
        counted = self._record(keys=[self._bucket(index)], args=args)
        return counted.decode() if isinstance(counted, bytes) else str(counted)

    def counts(self, now: float | None = None) -> dict[str, int]:
        """The counts of the window ending ``now``: the ``max_names`` most counted names, most
        first, then ``OTHER`` for the rest (when there is a rest)."""
        ms = int((time.time() if now is None else now) * 1000)
        latest = ms // self.width_ms
        pipe = self.store.pipeline(transaction=False)
        for index in range(latest - BUCKETS + 1, latest + 1):
            pipe.hgetall(self._bucket(index))
        total: Counter[str] = Counter()
        for bucket in cast(list[dict[bytes, bytes]], pipe.execute()):
            total.update({k.decode(): int(v) for k, v in bucket.items()})
        other = total.pop(OTHER, 0)
        ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))
        counts = dict(ranked[: self.max_names])
        other += sum(n for _, n in ranked[self.max_names :])
        if other:
            counts[OTHER] = other
        return counts

    def summarise(self, owner: str, now: float | None = None) -> Summary:
        """The counts, and whether they differ from the last summary taken (``changed``).
        ``owner`` is the caller's task id: a retried task finds its own summary there and sees
        it as changed, so that a publish that failed is tried again."""
        counts = self.counts(now)
        canonical = json.dumps(counts, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        args: list[str | int] = [digest, owner, self.window]
        changed = self._compare_and_set(keys=[f"{self.prefix}:summary"], args=args)
        return Summary(counts, changed=bool(changed))
