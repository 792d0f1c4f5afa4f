"""The Lua scripts of the Redis layers: each send is one round trip, and a repeated idempotency
key makes it a no-op, so that a retried or redelivered send runs once.

KEYS name the stream (or channel) keys and the dedupe key ("" for none); a dedupe key lives for
the window ARGV gives (a task's redelivery window, or a short one for the layer's own keys).
"""

from __future__ import annotations

__all__ = ["APPEND", "PUBLISH_ONCE", "TRANSIENT"]

# Skip a repeated key, number the message, append it with the stream's epoch and number, trim to
# capacity and age, and let idle groups expire. KEYS: stream, meta (a hash: epoch, seq), dedupe
# key or "". ARGV: data, capacity, expiry seconds, dedupe seconds. The entry id, or false.
APPEND = """
local stream, meta, dedupe = KEYS[1], KEYS[2], KEYS[3]
local data, capacity, expiry = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if dedupe ~= "" and not redis.call("SET", dedupe, "1", "NX", "EX", tonumber(ARGV[4])) then
  return false
end
local now = redis.call("TIME")
local epoch = redis.call("HGET", meta, "epoch")
if not epoch or redis.call("EXISTS", stream) == 0 then
  epoch = now[1] .. "." .. now[2]
  redis.call("DEL", meta)
  redis.call("HSET", meta, "epoch", epoch)
end
local seq = redis.call("HINCRBY", meta, "seq", 1)
local id = redis.call("XADD", stream, "MAXLEN", capacity, "*", "d", data, "e", epoch, "n", seq)
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - expiry * 1000
redis.call("XTRIM", stream, "MINID", string.format("%.0f", oldest))
redis.call("EXPIRE", meta, expiry)
redis.call("EXPIRE", stream, expiry)
return id
"""

# A transient broadcast: onto the group's short live stream, which the same readers read, kept
# only as long as a reader needs to see it. It notes the number of the last kept message ("a"),
# so that a reader puts it after that one and before the next. KEYS: live stream, meta, dedupe
# key or "". ARGV: data, dedupe seconds.
TRANSIENT = """
if KEYS[3] ~= "" and not redis.call("SET", KEYS[3], "1", "NX", "EX", tonumber(ARGV[2])) then
  return false
end
local after = redis.call("HGET", KEYS[2], "seq") or "0"
local id = redis.call("XADD", KEYS[1], "MAXLEN", "~", 1000, "*", "d", ARGV[1], "a", after)
redis.call("EXPIRE", KEYS[1], 60)
return id
"""

# A pub/sub broadcast with an idempotency key (a task's id): published at most once per key.
# KEYS: dedupe key. ARGV: channel, data, dedupe seconds.
PUBLISH_ONCE = """
if not redis.call("SET", KEYS[1], "1", "NX", "EX", tonumber(ARGV[3])) then
  return false
end
return redis.call("PUBLISH", ARGV[1], ARGV[2])
"""
