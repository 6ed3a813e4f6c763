-- remember.lua: keep a copy of a person as SQL just showed them, unless it is already outdated.
--
-- KEYS[1] turnout:user:<id>  HASH {floor, v, email, name, org, ev}
-- ARGV[1] the session_version SQL showed, ARGV[2] time to live in ms,
-- ARGV[3..] field, value pairs of the copy (ev: when the address was verified, ISO 8601,
--           or empty)
--
-- "floor" is the lowest session_version still valid: revoke.lua raises it when
-- a sign-out commits. A request that read SQL before that commit and writes
-- after it would bring back the old version; its copy is refused here.
-- Returns 1 when the copy was stored, 0 when it was outdated.

local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
if tonumber(ARGV[1]) < floor then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'floor', ARGV[1], 'v', ARGV[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
