-- Moves one delayed job to waiting now, behind the jobs already waiting at its priority; emits
-- `waiting` (reason promoted) and records it in the job's history.
-- KEYS: the job (declared so a cluster routes the call to its queue's shard; the script builds
--   the same key from ARGV)
-- ARGV: job key prefix, queue key prefix ('<prefix>:q:<queue>:'), queue, id
-- Returns the state the job was in ('missing' when there is none of this queue).
local jp, q, queue, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = jp .. id
if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'queue') ~= queue then
  return 'missing'
end
local state = redis.call('HGET', key, 'state')
if state == 'delayed' then
  local now = server_now()
  local prio = tonumber(redis.call('HGET', key, 'priority')) or 0
  local score = fair_score(q, id, prio)
  redis.call('ZREM', q .. 'delayed', id)
  redis.call('ZADD', q .. 'wait', score, id)
  redis.call('HSET', key, 'state', 'waiting', 'hist', with_entry(key, 'p', nil, now))
  redis.call('HDEL', key, 'delay_until', 'ord')
  index_move(q, id, 'delayed', 'wait', score)
  emit(q, 'waiting', id, 'r', 'promoted')
  wake_workers(q)
end
return state
