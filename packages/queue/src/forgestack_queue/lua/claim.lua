-- Claims up to N runnable jobs across the worker's queues in one atomic step: promotes due delayed
-- jobs, recovers jobs whose lease expired (their worker died), then pops by priority then FIFO.
-- KEYS: per queue, 5 keys: wait, delayed, active, seq, failed
-- ARGV: job key prefix, max jobs, lease ms, worker token, first queue index (rotation), queue names...
-- Returns {now, next_due (-1 when none), job, job, ...};
-- a job is {id, queue, name, data, opts, attempts_started, created_at, token}.
local now, t = server_now()
local jp, want, lease, worker = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local first = tonumber(ARGV[5])
local nq = #KEYS / 5
local out = {num(now), '-1'}
local next_due = -1

local function requeue(wait, seq, key, id)
  local prio = tonumber(redis.call('HGET', key, 'priority') or '0')
  redis.call('ZADD', wait, run_score(prio, seq), id)
  redis.call('HSET', key, 'state', 'waiting')
end

local function quarantine(failed, key, id, queue, typ)
  redis.call('DEL', key)
  redis.call('HSET', key, 'id', id, 'queue', queue, 'name', queue, 'state', 'failed',
    'failed_reason', 'job record is a Redis ' .. typ .. ', not a hash: not run',
    'finished_at', num(now), 'attempts_made', 0, 'priority', 0, 'opts', '{}')
  redis.call('ZADD', failed, num(now), id)
end

for k = 0, nq - 1 do
  local qi = (first + k) % nq
  local wait, delayed, active, seq, failed =
    KEYS[qi * 5 + 1], KEYS[qi * 5 + 2], KEYS[qi * 5 + 3], KEYS[qi * 5 + 4], KEYS[qi * 5 + 5]
  local queue = ARGV[6 + qi]

  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', num(now), 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    local key = jp .. id
    redis.call('ZREM', delayed, id)
    local typ = redis.call('TYPE', key)['ok']
    if typ == 'hash' then requeue(wait, seq, key, id)
    elseif typ ~= 'none' then quarantine(failed, key, id, queue, typ) end
  end

  local stalled = redis.call('ZRANGEBYSCORE', active, '-inf', num(now), 'LIMIT', 0, 100)
  for _, id in ipairs(stalled) do
    local key = jp .. id
    redis.call('ZREM', active, id)
    if redis.call('TYPE', key)['ok'] == 'hash' then
      local made = redis.call('HGET', key, 'attempts_started')
      redis.call('HSET', key, 'attempts_made', made, 'token', '',
        'failed_reason', 'worker lost: lease expired during attempt ' .. made)
      if tonumber(made) >= tonumber(redis.call('HGET', key, 'attempts') or '1') then
        redis.call('HSET', key, 'state', 'failed', 'finished_at', num(now))
        redis.call('ZADD', failed, num(now), id)
      else
        requeue(wait, seq, key, id)
      end
    end
  end

  while want > 0 do
    local popped = redis.call('ZPOPMIN', wait, want)
    if #popped == 0 then break end
    for j = 1, #popped, 2 do
      local id = popped[j]
      local key = jp .. id
      local typ = redis.call('TYPE', key)['ok']
      if typ == 'hash' then
        local started = redis.call('HINCRBY', key, 'attempts_started', 1)
        local token = worker .. ':' .. started
        redis.call('HSET', key, 'state', 'active', 'processed_at', num(now), 'token', token,
          'queue', queue)
        redis.call('ZADD', active, num(now + lease), id)
        -- id and queue come from where the job was found, not from fields a writer may lack.
        local f = redis.call('HMGET', key, 'name', 'data', 'opts', 'created_at')
        out[#out + 1] = {id, queue, f[1], f[2], f[3], started, f[4], token}
        want = want - 1
      elseif typ ~= 'none' then
        quarantine(failed, key, id, queue, typ)
      end
    end
  end

  if want == 0 and redis.call('ZCARD', wait) > 0 then
    -- Runnable jobs remain after this worker filled up: wake another idle worker for them.
    redis.call('ZADD', KEYS[qi * 5 + 1]:gsub(':wait$', ':marker'), 0, '0')
  end

  local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #head > 0 then
    local d = tonumber(head[2])
    if next_due < 0 or d < next_due then next_due = d end
  end
end
out[2] = num(next_due)
return out
