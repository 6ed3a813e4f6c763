-- rebuild.lua: load an event from what SQL holds (lazy rebuild and reconcile).
--
-- KEYS: the seven of reserve.lua (seats, confirmed, waitlisted, holds, wholds, tokens, version)
-- ARGV[1] version read before SQL was read ('0' when the key was missing)
-- ARGV[2] capacity, ARGV[3] '1' to replace what is there (reconcile), '0' only if missing,
-- ARGV[4] waitlist enabled '0'|'1', ARGV[5] waitlist capacity (-1 = no limit),
-- ARGV[6] n = number of confirmed ids that follow,
-- ARGV[7 .. 6+n] confirmed user ids, ARGV[7+n ..] waitlisted user ids
--
-- Returns {status, existed, redis_capacity, redis_confirmed, missing, extra, waitlist_drift}:
--   "retry"   the version moved while SQL was read: a commit raced us, read again
--   "exists"  another process rebuilt it first (only when ARGV[3] is '0')
--   "written" Redis now matches SQL; missing = seats SQL has and Redis lacked,
--             extra = the reverse, waitlist_drift = waitlist members that differed.
-- Live holds are left alone: they belong to attempts still in flight.

local version = redis.call('GET', KEYS[7]) or '0'
if version ~= ARGV[1] then
  return {'retry', 0, 0, 0, 0, 0, 0}
end
local existed = redis.call('EXISTS', KEYS[1])
if existed == 1 and ARGV[3] == '0' then
  return {'exists', 1, 0, 0, 0, 0, 0}
end

local n = tonumber(ARGV[6])
local first_w = 7 + n

local function replace(key, from, to)
  local before = redis.call('SCARD', key)
  local missing = 0
  for i = from, to do
    if redis.call('SISMEMBER', key, ARGV[i]) == 0 then
      missing = missing + 1
    end
  end
  local extra = before - ((to - from + 1) - missing)
  redis.call('DEL', key)
  for i = from, to, 1000 do
    redis.call('SADD', key, unpack(ARGV, i, math.min(i + 999, to)))
  end
  return before, missing, extra
end

local old_capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity') or '0')
local old_count, missing, extra = replace(KEYS[2], 7, 6 + n)
local _, w_missing, w_extra = replace(KEYS[3], first_w, #ARGV)
redis.call('HSET', KEYS[1], 'capacity', ARGV[2], 'wl_enabled', ARGV[4], 'wl_capacity', ARGV[5])
return {'written', existed, old_capacity, old_count, missing, extra, w_missing + w_extra}
