-- Changes the priority of one waiting or delayed job. A waiting job takes its place behind the
-- jobs already waiting at the new priority (as if added now); a delayed one keeps its due time
-- and runs at the new priority once due.
-- KEYS: the job (declared so a cluster routes the call to its queue's shard; the script builds
--   the same key from ARGV)
-- ARGV: job key prefix, queue key prefix ('<prefix>:q:<queue>:'), queue, id, priority
-- Returns the state the job was in ('missing' when there is none of this queue).
local jp, q, queue, id, prio = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = jp .. id
if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'queue') ~= queue then
  return 'missing'
end
local state = redis.call('HGET', key, 'state')
if state == 'waiting' or state == 'delayed' then
  if prio == 0 then redis.call('HDEL', key, 'priority')
  else redis.call('HSET', key, 'priority', prio) end
end
if state == 'waiting' then
  local score = fair_score(q, id, prio)
  redis.call('ZADD', q .. 'wait', score, id)
  index_move(q, id, nil, 'wait', score)
end
return state
