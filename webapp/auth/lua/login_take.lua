-- login_take.lua: count one sign-in attempt on every counter it falls under, or on none.
--
-- KEYS[1..n] turnout:login:...  STRING  an attempt count that expires with its window
-- ARGV[2i-1] the limit of KEYS[i], ARGV[2i] the window of KEYS[i] in ms
--
-- All or nothing, in one step: when any counter is at its limit nothing is counted
-- and the answer is {i, ms until KEYS[i] expires}; otherwise every counter goes up
-- by one (a new counter starts its window) and the answer is {0, 0}. Because the
-- check and the count are one script, parallel guesses cannot all pass the check
-- before any of them is counted.

for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, ARGV[2 * i])
      ttl = tonumber(ARGV[2 * i])
    end
    return {i, ttl}
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('PEXPIRE', key, ARGV[2 * i])
  end
end
return {0, 0}
