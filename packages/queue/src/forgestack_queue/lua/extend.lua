-- Extends the leases of jobs this worker is still running, so live jobs are never recovered.
-- Owner indexes keep the same score as the queue's active set.
-- KEYS: active; ARGV: lease ms, ids...
local now, t = server_now()
local deadline = num(now + tonumber(ARGV[1]))
local q = string.sub(KEYS[1], 1, -7)
for i = 2, #ARGV do
  local id = ARGV[i]
  redis.call('ZADD', KEYS[1], 'XX', deadline, id)
  local owner = owner_of(id)
  if owner then redis.call('ZADD', q .. 'o:' .. owner .. ':active', 'XX', deadline, id) end
end
return #ARGV - 1
