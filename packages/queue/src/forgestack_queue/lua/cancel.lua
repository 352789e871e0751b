-- Cancels one job. Waiting or delayed: failed as cancelled now. Active: flagged ('cancel') and its
-- worker told on its own channel, '<worker channel prefix><worker id>:cancel' (the worker id heads
-- the claim token); the worker cancels the handler and records the attempt failed as cancelled.
-- If that message is lost (the worker was reconnecting), the flag reaches it on its next lease
-- renewal (extend.lua), and a lost worker's cancelled job is failed, not recovered (claim.lua).
-- KEYS: the job (declared so a cluster routes the call to its queue's shard; the script builds
--   the same key from ARGV)
-- ARGV: job key prefix, queue key prefix ('<prefix>:q:<queue>:'), queue, id, worker channel prefix
-- Returns the state the job was in ('missing' when there is none of this queue).
local jp, q, queue, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = jp .. id
if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'queue') ~= queue then
  return 'missing'
end
local state = redis.call('HGET', key, 'state')
local now = server_now()
if state == 'waiting' then
  fail_cancelled(key, q, id, 'wait', now)
elseif state == 'delayed' then
  fail_cancelled(key, q, id, 'delayed', now)
elseif state == 'active' then
  redis.call('HSET', key, 'cancel', num(now))
  local holder = string.match(redis.call('HGET', key, 'token') or '', '^([^:]+):')
  if holder then redis.call('PUBLISH', ARGV[5] .. holder .. ':cancel', id) end
end
return state
