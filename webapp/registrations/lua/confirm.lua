-- confirm.lua: after the SQL commit, turn the attempt's hold into what SQL decided.
--
-- KEYS: the seven of reserve.lua (seats, confirmed, waitlisted, holds, wholds, tokens, version)
-- ARGV[1] user id, ARGV[2] hold token ('' when the attempt had no hold),
-- ARGV[3] 'confirmed' or 'waitlisted' (SQL's decision, which may differ from the hold's kind)
--
-- Returns 1 when Redis now counts the person, 0 when it does not: the event is
-- not in Redis, or the attempt's hold is gone (vacate voided it because a
-- cancellation of this very registration committed first, or it expired).
-- Counting then could bring back a cancelled place; the next rebuild or
-- reconcile counts it from SQL if it is real. Idempotent.

redis.call('INCR', KEYS[7])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local user = ARGV[1]
local target = ARGV[3] == 'waitlisted' and KEYS[3] or KEYS[2]
if ARGV[2] ~= '' then
  if redis.call('HGET', KEYS[6], user) ~= ARGV[2] then
    return redis.call('SISMEMBER', target, user)
  end
  redis.call('ZREM', KEYS[4], user)
  redis.call('ZREM', KEYS[5], user)
  redis.call('HDEL', KEYS[6], user)
end
redis.call('SADD', target, user)
return 1
