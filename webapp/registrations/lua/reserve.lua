-- reserve.lua: admit one person to an event, as a seat hold or a waitlist hold that expires.
--
-- KEYS (every script takes the same seven, all with the event's hash tag):
--   [1] seats HASH {capacity, wl_enabled 0|1, wl_capacity (-1 = no limit)};
--       its absence means "rebuild from SQL first"
--   [2] confirmed SET   user ids holding a committed seat
--   [3] waitlisted SET  user ids on the committed waitlist
--   [4] holds ZSET      user id -> seat hold expiry (ms, Redis clock)
--   [5] wholds ZSET     user id -> waitlist hold expiry
--   [6] tokens HASH     user id -> token of the attempt that owns the hold
--   [7] version STRING  bumped on every committed change
-- ARGV[1] user id, ARGV[2] hold token (a retry with the same token is idempotent),
-- ARGV[3] hold time to live in ms (longer than the slowest request),
-- ARGV[4] trust in ms: a hold taken longer ago than this may belong to a dead attempt
--
-- Returns {status, seats_left} with status one of ("full": then the owner process ids
-- of the holds, if any, follow)
--   "missing"    the event is not in Redis: never admit against an empty key
--   "registered" the person already holds a confirmed seat
--   "waitlisted" the person is already on the waitlist
--   "pending"    another attempt of the same person holds a place: in flight, or dead
--                (the caller asks SQL, which knows whether the person has a place)
--   "full"       no seat, and no room on the waitlist
--   "unsure"     full only counting a hold older than the trust: its attempt may have
--                died, so the caller asks SQL (a dead hold says "full" for `trust` ms
--                at most, not for its whole time to live)
--   "held"       a seat is held for this attempt
--   "wait_held"  a waitlist place is held for this attempt
-- Newcomers go behind the waitlist: while anyone waits, no seat is offered to
-- someone new (promotion gives freed seats to the head of the queue).
-- Nothing is written before every check has passed.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing', 0}
end

local user, token = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Holds of attempts that died or stalled give their place back here.
for _, zkey in ipairs({KEYS[4], KEYS[5]}) do
  local stale = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
  for i = 1, #stale, 500 do
    local chunk = {unpack(stale, i, math.min(i + 499, #stale))}
    redis.call('ZREM', zkey, unpack(chunk))
    redis.call('HDEL', KEYS[6], unpack(chunk))
  end
end

local seats = redis.call('HMGET', KEYS[1], 'capacity', 'wl_enabled', 'wl_capacity')
local capacity = tonumber(seats[1])
local taken = redis.call('SCARD', KEYS[2]) + redis.call('ZCARD', KEYS[4])
local waiting = redis.call('SCARD', KEYS[3])

if redis.call('SISMEMBER', KEYS[2], user) == 1 then
  return {'registered', capacity - taken}
end
if redis.call('SISMEMBER', KEYS[3], user) == 1 then
  return {'waitlisted', capacity - taken}
end
local owner = redis.call('HGET', KEYS[6], user)
if owner then
  if owner ~= token then
    return {'pending', capacity - taken}
  end
  if redis.call('ZSCORE', KEYS[4], user) then
    return {'held', capacity - taken}
  end
  return {'wait_held', 0}
end

if taken < capacity and waiting == 0 then
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), user)
  redis.call('HSET', KEYS[6], user, token)
  return {'held', capacity - taken - 1}
end

local wl_capacity = tonumber(seats[3] or '-1')
if seats[2] == '1' and (wl_capacity < 0 or waiting + redis.call('ZCARD', KEYS[5]) < wl_capacity) then
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[3]), user)
  redis.call('HSET', KEYS[6], user, token)
  return {'wait_held', 0}
end

-- Holds expire at taken + ttl: one taken before now - trust expires before now + ttl - trust.
local trusted_until = now + tonumber(ARGV[3]) - tonumber(ARGV[4])
for _, zkey in ipairs({KEYS[4], KEYS[5]}) do
  if redis.call('ZCOUNT', zkey, '-inf', trusted_until - 1) > 0 then
    return {'unsure', math.max(capacity - taken, 0)}
  end
end
-- Full, maybe only because of holds: name their owner processes (a token is
-- "<process id>.<random>"), so the caller can ask SQL if one of them has died.
local owners, seen = {}, {}
for _, held_by in ipairs(redis.call('HVALS', KEYS[6])) do
  local owner = string.match(held_by, '^([^.]+)%.')
  if owner and not seen[owner] then
    seen[owner] = true
    owners[#owners + 1] = owner
  end
end
return {'full', 0, unpack(owners)}
