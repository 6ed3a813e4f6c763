-- revoke.lua: forget the copy of a person and refuse any copy older than a version.
--
-- KEYS[1] turnout:user:<id>  HASH {floor, v, email, name, org, ev}
-- ARGV[1] the lowest session_version still valid, ARGV[2] time to live in ms
--
-- Leaves only {floor}: the next request reads SQL, and remember.lua refuses
-- copies below the floor. Never lowers a floor. Returns 1.

local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
if tonumber(ARGV[1]) > floor then
  floor = tonumber(ARGV[1])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'floor', floor)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
