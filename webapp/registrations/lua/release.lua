-- release.lua: give back the place held by one attempt (compensation after a failed commit).
--
-- KEYS: the seven of reserve.lua (seats, confirmed, waitlisted, holds, wholds, tokens, version)
-- ARGV[1] user id, ARGV[2] hold token
--
-- Returns 1 if this call released the hold, 0 if it was already gone (expired,
-- released before, or owned by a newer attempt), so releasing twice is harmless.

if redis.call('HGET', KEYS[6], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return 1
