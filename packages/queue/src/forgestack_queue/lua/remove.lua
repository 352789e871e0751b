-- Removes one job that is not running.
-- KEYS: job, wait, delayed, completed, failed
-- ARGV: id, queue
-- Returns 'ok', 'missing' or the blocking state ('active').
local key, id = KEYS[1], ARGV[1]
if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'queue') ~= ARGV[2] then
  return 'missing'
end
local state = redis.call('HGET', key, 'state')
if state == 'active' then return state end
for i = 2, 5 do redis.call('ZREM', KEYS[i], id) end
redis.call('DEL', key)
return 'ok'
