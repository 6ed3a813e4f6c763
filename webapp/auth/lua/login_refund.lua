-- login_refund.lua: give back the counts login_take.lua made for an attempt that succeeded.
--
-- KEYS[1..n] turnout:login:...  STRING  attempt counts (see login_take.lua)
--
-- Lowers each existing counter by one, never below zero. A counter whose window has
-- ended is gone and stays gone (DECR would recreate it without an expiry).
-- Returns how many counters were lowered.

local lowered = 0
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
    lowered = lowered + 1
  end
end
return lowered
