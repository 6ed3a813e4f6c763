-- vacate.lua: after a cancellation (and any promotions) committed in SQL, mirror it.
--
-- KEYS: the seven of reserve.lua (seats, confirmed, waitlisted, holds, wholds, tokens, version)
-- ARGV[1] user id leaving (their seat or waitlist place), '' when nobody leaves
-- ARGV[2..] user ids promoted from the waitlist to a seat in the same transaction
--
-- One script, so Redis never shows the seat free between the leave and the
-- promotion. The leaver's hold, if any, is voided too: it belongs to an attempt
-- whose commit this cancellation followed (its late confirm must not count the
-- seat again). Returns 1 if the leaver's seat or waitlist place was counted in
-- Redis and is now gone, else 0. Idempotent.

redis.call('INCR', KEYS[7])
local user = ARGV[1]
if user ~= '' then
  redis.call('ZREM', KEYS[4], user)
  redis.call('ZREM', KEYS[5], user)
  redis.call('HDEL', KEYS[6], user)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local freed = 0
if user ~= '' then
  freed = redis.call('SREM', KEYS[2], user) + redis.call('SREM', KEYS[3], user)
end
for i = 2, #ARGV do
  redis.call('SREM', KEYS[3], ARGV[i])
  redis.call('SADD', KEYS[2], ARGV[i])
end
return freed
