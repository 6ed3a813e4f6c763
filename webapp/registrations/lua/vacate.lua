-- vacate.lua: free a confirmed seat after the cancellation committed in SQL.
--
-- KEYS[1] seats HASH, KEYS[2] confirmed SET, KEYS[3] version STRING
-- ARGV[1] user id
--
-- Returns 1 if the seat was counted in Redis and is now free, else 0. Idempotent.

redis.call('INCR', KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('SREM', KEYS[2], ARGV[1])
