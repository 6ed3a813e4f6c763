-- confirm.lua: turn a hold into a confirmed seat after the SQL commit.
--
-- KEYS[1] seats HASH, KEYS[2] confirmed SET, KEYS[3] holds ZSET, KEYS[4] tokens HASH,
-- KEYS[5] version STRING (bumped on every change, so a rebuild can tell it raced)
-- ARGV[1] user id, ARGV[2] hold token ('' when the attempt had no hold)
--
-- Returns 1 when Redis now counts the seat, 0 when it does not: the event is not
-- in Redis, or the attempt's hold is gone (vacate voided it because a cancellation
-- of this very registration committed first, or it expired). Counting the seat
-- then could bring back a cancelled place, a seat SQL has free; the next rebuild
-- or reconcile counts it from SQL if it is real. Idempotent.

redis.call('INCR', KEYS[5])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[2] ~= '' then
  if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then
    return redis.call('SISMEMBER', KEYS[2], ARGV[1])
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
