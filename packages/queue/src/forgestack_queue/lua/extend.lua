-- Extends the leases of jobs this worker is still running, so live jobs are never recovered.
-- Only for the attempt that holds the job (its token): an attempt whose lease lapsed, and whose job
-- was recovered and claimed again, must not keep the new holder's lease alive. Owner indexes keep
-- the same score as the queue's active set.
-- KEYS: active; ARGV: job key prefix, lease ms, then id, token pairs
-- Returns {number of leases extended, id of each of those jobs an operator cancelled (the
-- backstop for a cancel message the worker missed, cancel.lua), id and token of each attempt whose
-- token no longer holds its job (its lease lapsed, during a stall longer than the lease, and it was
-- recovered: the worker must not start it if it has not yet)}. The token names the attempt: one
-- worker may hold a job twice, the lapsed attempt and its own fresh claim of the job.
local now, t = server_now()
local jp = ARGV[1]
local deadline = num(now + tonumber(ARGV[2]))
local q = string.sub(KEYS[1], 1, -7)
local extended, cancelled, lost = 0, {}, {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  -- pcall: a record overwritten with another type is not ours.
  local f = redis.pcall('HMGET', jp .. id, 'token', 'cancel')
  if f[1] == ARGV[i + 1] then
    extended = extended + redis.call('ZADD', KEYS[1], 'XX', 'CH', deadline, id)
    if f[2] then cancelled[#cancelled + 1] = id end
    local owner = owner_of(id)
    if owner then redis.call('ZADD', q .. 'o:' .. owner .. ':active', 'XX', deadline, id) end
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = ARGV[i + 1]
  end
end
return {extended, cancelled, lost}
