-- Extends the leases of jobs this worker is still running, so live jobs are never recovered.
-- Only for the attempt that holds the job (its token): an attempt whose lease lapsed, and whose job
-- was recovered and claimed again, must not keep the new holder's lease alive. Owner indexes keep
-- the same score as the queue's active set.
-- KEYS: active; ARGV: job key prefix, lease ms, then id, token pairs
-- Returns the number of leases extended.
local now, t = server_now()
local jp = ARGV[1]
local deadline = num(now + tonumber(ARGV[2]))
local q = string.sub(KEYS[1], 1, -7)
local extended = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  -- pcall: a record overwritten with another type is not ours.
  if redis.pcall('HGET', jp .. id, 'token') == ARGV[i + 1] then
    extended = extended + redis.call('ZADD', KEYS[1], 'XX', 'CH', deadline, id)
    local owner = owner_of(id)
    if owner then redis.call('ZADD', q .. 'o:' .. owner .. ':active', 'XX', deadline, id) end
  end
end
return extended
