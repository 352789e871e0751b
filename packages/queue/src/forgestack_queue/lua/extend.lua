-- Extends the leases of jobs this worker is still running, so live jobs are never recovered.
-- KEYS: active; ARGV: lease ms, ids...
local now, t = server_now()
local deadline = string.format('%.0f', now + tonumber(ARGV[1]))
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i]) end
return #ARGV - 1
