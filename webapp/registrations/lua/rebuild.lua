-- rebuild.lua: load an event's seats from what SQL holds (lazy rebuild and reconcile).
--
-- KEYS[1] seats HASH, KEYS[2] confirmed SET, KEYS[3] version STRING
-- ARGV[1] version read before SQL was read ('0' when the key was missing)
-- ARGV[2] capacity
-- ARGV[3] '1' to replace what is there (reconcile), '0' to write only if missing
-- ARGV[4..] user ids holding a confirmed seat in SQL
--
-- Returns {status, existed, redis_capacity, redis_confirmed, missing, extra}:
--   "retry"   the version moved while SQL was read: a commit raced us, read again
--   "exists"  another process rebuilt it first (only when ARGV[3] is '0')
--   "written" Redis now matches SQL; the other fields describe the drift found:
--             missing = seats SQL has and Redis did not, extra = the reverse.
-- Live holds are left alone: they belong to attempts still in flight.

local version = redis.call('GET', KEYS[3]) or '0'
if version ~= ARGV[1] then
  return {'retry', 0, 0, 0, 0, 0}
end
local existed = redis.call('EXISTS', KEYS[1])
if existed == 1 and ARGV[3] == '0' then
  return {'exists', 1, 0, 0, 0, 0}
end

local old_capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity') or '0')
local old_count = redis.call('SCARD', KEYS[2])
local missing = 0
for i = 4, #ARGV do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
    missing = missing + 1
  end
end
local extra = old_count - (#ARGV - 3 - missing)

redis.call('DEL', KEYS[2])
for i = 4, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'capacity', ARGV[2])
return {'written', existed, old_capacity, old_count, missing, extra}
