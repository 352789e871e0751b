-- Adds jobs atomically; an id that already exists is returned, never created twice (idempotent add).
-- KEYS: wait, delayed, seq, marker, queues
-- ARGV: job key prefix, queue, then groups of 7: id, name, data, opts, priority, delay_ms, attempts
-- Returns one {id, created (1|0), state, queue} per job (for an existing id: its own queue).
local now, t = server_now()
local jp, queue = ARGV[1], ARGV[2]
local out, woke = {}, false
redis.call('SADD', KEYS[5], queue)
for i = 3, #ARGV, 7 do
  local id = ARGV[i]
  local key = jp .. id
  if redis.call('EXISTS', key) == 1 then
    local state, owner = 'failed', ''
    if redis.call('TYPE', key)['ok'] == 'hash' then
      state = redis.call('HGET', key, 'state') or 'failed'
      owner = redis.call('HGET', key, 'queue') or ''
    end
    out[#out + 1] = {id, 0, state, owner}
  else
    local prio, delay = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
    local state = 'waiting'
    redis.call('HSET', key, 'id', id, 'queue', queue, 'name', ARGV[i + 1], 'data', ARGV[i + 2],
      'opts', ARGV[i + 3], 'priority', ARGV[i + 4], 'attempts', ARGV[i + 6], 'attempts_made', 0,
      'attempts_started', 0, 'created_at', num(now))
    if delay > 0 then
      state = 'delayed'
      redis.call('ZADD', KEYS[2], num(now + delay), id)
      redis.call('HSET', key, 'state', state, 'delay_until', num(now + delay))
    else
      redis.call('ZADD', KEYS[1], run_score(prio, KEYS[3]), id)
      redis.call('HSET', key, 'state', state)
    end
    woke = true
    out[#out + 1] = {id, 1, state, queue}
  end
end
if woke then redis.call('ZADD', KEYS[4], 0, '0') end
return out
