-- Records the end of an attempt, only for the worker still holding the job (its token), so a worker
-- whose lease expired cannot overwrite the attempt that replaced it.
-- KEYS: job, active, completed, failed, wait, delayed, seq, marker
-- ARGV: id, token, outcome (completed|failed|retry|release), value (result JSON or reason),
--       stacktrace, keep count (-1 none, 0 remove now), keep age s (-1 none), retry delay ms, job prefix
-- Returns 1, or 0 when the token no longer matches (the job was recovered elsewhere).
local function num(x) return string.format('%.0f', x) end
local key, id, outcome = KEYS[1], ARGV[1], ARGV[3]
if redis.call('TYPE', key)['ok'] ~= 'hash' or redis.call('HGET', key, 'token') ~= ARGV[2] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Finished sets order by microsecond so "newest first" is exact for jobs ending in one millisecond.
local finished_score = string.format('%.3f', tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], id)

local function trim(set, count, age, jp)
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

local function requeue()
  local prio = tonumber(redis.call('HGET', key, 'priority') or '0')
  local s = redis.call('INCR', KEYS[7]) % 4294967296
  redis.call('ZADD', KEYS[5], num(prio * 4294967296 + s), id)
  redis.call('HSET', key, 'state', 'waiting')
  redis.call('ZADD', KEYS[8], 0, '0')
end

if outcome == 'completed' or outcome == 'failed' then
  local set = KEYS[3]
  redis.call('HSET', key, 'state', outcome, 'finished_at', num(now), 'token', '',
    'attempts_made', redis.call('HGET', key, 'attempts_started'))
  if outcome == 'completed' then
    redis.call('HSET', key, 'result', ARGV[4])
  else
    set = KEYS[4]
    redis.call('HSET', key, 'failed_reason', ARGV[4], 'stacktrace', ARGV[5])
  end
  local count = tonumber(ARGV[6])
  if count == 0 then
    redis.call('DEL', key)
  else
    redis.call('ZADD', set, finished_score, id)
    trim(set, count, tonumber(ARGV[7]), ARGV[9])
  end
elseif outcome == 'retry' then
  redis.call('HSET', key, 'token', '', 'failed_reason', ARGV[4], 'stacktrace', ARGV[5],
    'attempts_made', redis.call('HGET', key, 'attempts_started'))
  local delay = tonumber(ARGV[8])
  if delay > 0 then
    redis.call('ZADD', KEYS[6], num(now + delay), id)
    redis.call('HSET', key, 'state', 'delayed', 'delay_until', num(now + delay))
    redis.call('ZADD', KEYS[8], 0, '0')
  else
    requeue()
  end
else
  -- release: the worker is shutting down; the attempt did not happen.
  redis.call('HINCRBY', key, 'attempts_started', -1)
  redis.call('HSET', key, 'token', '')
  requeue()
end
return 1
