-- vacate.lua: free a confirmed seat after the cancellation committed in SQL.
--
-- KEYS[1] seats HASH, KEYS[2] confirmed SET, KEYS[3] version STRING,
-- KEYS[4] holds ZSET, KEYS[5] tokens HASH
-- ARGV[1] user id
--
-- The person's hold, if any, is voided too: it belongs to an attempt whose commit
-- this cancellation followed (its confirm, arriving late, must not count the seat
-- again) or to one SQL will refuse or that recounts on the next rebuild.
--
-- Returns 1 if the seat was counted in Redis and is now free, else 0. Idempotent.

redis.call('INCR', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('SREM', KEYS[2], ARGV[1])
