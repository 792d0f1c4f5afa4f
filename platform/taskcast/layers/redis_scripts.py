"""The Lua scripts of the Redis layers: each send is one round trip, and a repeated idempotency
key makes it a no-op, so that a retried or redelivered send runs once.

KEYS name the group's keys and the dedupe key ("" for none), all under the group's hash tag (one
slot on a Cluster); a dedupe key lives for the window ARGV gives (a task's redelivery window, or
a short one for the layer's own keys). Broadcasts go out with ARGV's publish command: PUBLISH, or
SPUBLISH on a Cluster (the group's channel shares the tag: the node that runs the script owns it).
"""

from __future__ import annotations

__all__ = ["APPEND", "PUBLISH_ONCE", "TRANSIENT"]

# Skip a repeated key, number the message, append it with the stream's epoch and number, trim to
# capacity and age, let idle groups expire, and tell the processes that read the group: the entry
# on its channel, after a line "K <id> <epoch> <seq>". KEYS: stream, meta (a hash: epoch, seq),
# dedupe key or "". ARGV: data, capacity, expiry seconds, dedupe seconds, channel, publish
# command. The entry id, or false.
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
redis.call(ARGV[6], ARGV[5], "K " .. id .. " " .. epoch .. " " .. seq .. "\\n" .. data)
return id
"""

# A transient broadcast: on the group's channel only, after a line "T" (delivered to the members
# present, not kept, not numbered). KEYS: dedupe key. ARGV: data, dedupe seconds, channel, publish
# command.
TRANSIENT = """
if not redis.call("SET", KEYS[1], "1", "NX", "EX", tonumber(ARGV[2])) then
  return false
end
return redis.call(ARGV[4], ARGV[3], "T\\n" .. ARGV[1])
"""

# A pub/sub broadcast with an idempotency key (a task's id): published at most once per key.
# KEYS: dedupe key. ARGV: channel, data, dedupe seconds, publish command.
PUBLISH_ONCE = """
if not redis.call("SET", KEYS[1], "1", "NX", "EX", tonumber(ARGV[3])) then
  return false
end
return redis.call(ARGV[4], ARGV[1], ARGV[2])
"""
