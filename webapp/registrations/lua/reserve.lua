-- reserve.lua: admit one person to an event's seats as a hold that expires.
--
-- KEYS[1] seats    HASH  {capacity}; its absence means "rebuild from SQL first"
-- KEYS[2] confirmed SET  user ids holding a committed seat
-- KEYS[3] holds    ZSET  user id -> hold expiry (ms since epoch, Redis clock)
-- KEYS[4] tokens   HASH  user id -> hold token of the attempt that owns the hold
-- ARGV[1] user id
-- ARGV[2] hold token (unique per attempt; a retry with the same token is idempotent)
-- ARGV[3] hold time to live in ms (longer than the slowest request)
--
-- Returns {status, seats_left} with status one of
--   "missing"    the event is not in Redis: never admit against an empty key
--   "registered" the person already holds a confirmed seat
--   "pending"    another attempt of the same person holds a seat right now
--   "full"       no seat is free (confirmed + live holds >= capacity)
--   "held"       a seat is held for this attempt until the hold expires
-- Nothing is written before every check has passed, so an error leaves no trace.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing', 0}
end

local user, token = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Holds of attempts that died or stalled give their seat back here.
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #stale, 500 do
  local chunk = {unpack(stale, i, math.min(i + 499, #stale))}
  redis.call('ZREM', KEYS[3], unpack(chunk))
  redis.call('HDEL', KEYS[4], unpack(chunk))
end

local capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity'))
local taken = redis.call('SCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])

if redis.call('SISMEMBER', KEYS[2], user) == 1 then
  return {'registered', capacity - taken}
end
local owner = redis.call('HGET', KEYS[4], user)
if owner then
  if owner == token then
    return {'held', capacity - taken}
  end
  return {'pending', capacity - taken}
end
if taken >= capacity then
  return {'full', 0}
end

redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), user)
redis.call('HSET', KEYS[4], user, token)
return {'held', capacity - taken - 1}
