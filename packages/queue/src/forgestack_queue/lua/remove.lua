-- Removes one job that is not running, with its owner index entry.
-- KEYS: job, wait, delayed, completed, failed, its log list
-- ARGV: id, queue, queue key prefix
-- Returns 'ok', 'missing' or the blocking state ('active').
local key, id, q = KEYS[1], ARGV[1], ARGV[3]
if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'queue') ~= ARGV[2] then
  return 'missing'
end
local state = redis.call('HGET', key, 'state')
if state == 'active' then return state end
local parts = {'wait', 'delayed', 'completed', 'failed'}
for i = 2, 5 do
  redis.call('ZREM', KEYS[i], id)
  index_move(q, id, parts[i - 1], nil)
end
redis.call('DEL', key, KEYS[6])
emit(q, 'removed', id)
return 'ok'
