-- Records the end of several attempts in one call (the worker groups attempts that end together).
-- An attempt is recorded only for the worker still holding the job (its token), so a worker whose
-- lease expired cannot overwrite the attempt that replaced it.
-- ARGV: job key prefix, queue key prefix, then groups of 9:
--   queue, id, token, outcome (completed|failed|retry|release), value (result JSON or reason),
--   stacktrace, keep count (-1 none, 0 remove now), keep age s (-1 none), retry delay ms
-- Returns one 1|0 per attempt: 0 when the token no longer matched (recovered elsewhere).
local function num(x) return string.format('%.0f', x) end
local jp, qp = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Finished sets order by microsecond so "newest first" is exact for jobs ending in one millisecond.
local finished_us = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local out = {}

local function trim(set, count, age)
  if age >= 0 then
    local old = redis.call('ZRANGEBYSCORE', set, '-inf', num(now - age * 1000), 'LIMIT', 0, 1000)
    for _, old_id in ipairs(old) do redis.call('DEL', jp .. old_id) end
    if #old > 0 then redis.call('ZREM', set, unpack(old)) end
  end
  if count > 0 then
    local excess = redis.call('ZCARD', set) - count
    if excess > 0 then
      local ids = redis.call('ZRANGE', set, 0, excess - 1)
      for _, old_id in ipairs(ids) do redis.call('DEL', jp .. old_id) end
      redis.call('ZREMRANGEBYRANK', set, 0, excess - 1)
    end
  end
end

local function requeue(q, key, id)
  local prio = tonumber(redis.call('HGET', key, 'priority') or '0')
  local s = redis.call('INCR', q .. 'seq') % 4294967296
  redis.call('ZADD', q .. 'wait', num(prio * 4294967296 + s), id)
  redis.call('HSET', key, 'state', 'waiting')
  redis.call('ZADD', q .. 'marker', 0, '0')
end

for i = 3, #ARGV, 9 do
  local q, id, outcome = qp .. ARGV[i] .. ':', ARGV[i + 1], ARGV[i + 3]
  local key = jp .. id
  if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'token') ~= ARGV[i + 2] then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    redis.call('ZREM', q .. 'active', id)
    if outcome == 'completed' or outcome == 'failed' then
      local set = q .. outcome
      redis.call('HSET', key, 'state', outcome, 'finished_at', num(now), 'token', '',
        'attempts_made', redis.call('HGET', key, 'attempts_started'))
      if outcome == 'completed' then
        redis.call('HSET', key, 'result', ARGV[i + 4])
      else
        redis.call('HSET', key, 'failed_reason', ARGV[i + 4], 'stacktrace', ARGV[i + 5])
      end
      local count = tonumber(ARGV[i + 6])
      if count == 0 then
        redis.call('DEL', key)
      else
        finished_us = finished_us + 0.001
        redis.call('ZADD', set, string.format('%.3f', finished_us), id)
        trim(set, count, tonumber(ARGV[i + 7]))
      end
    elseif outcome == 'retry' then
      redis.call('HSET', key, 'token', '', 'failed_reason', ARGV[i + 4], 'stacktrace', ARGV[i + 5],
        'attempts_made', redis.call('HGET', key, 'attempts_started'))
      local delay = tonumber(ARGV[i + 8])
      if delay > 0 then
        redis.call('ZADD', q .. 'delayed', num(now + delay), id)
        redis.call('HSET', key, 'state', 'delayed', 'delay_until', num(now + delay))
        redis.call('ZADD', q .. 'marker', 0, '0')
      else
        requeue(q, key, id)
      end
    else
      -- release: the worker is shutting down; the attempt did not happen.
      redis.call('HINCRBY', key, 'attempts_started', -1)
      redis.call('HSET', key, 'token', '')
      requeue(q, key, id)
    end
  end
end
return out
