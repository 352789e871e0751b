-- Prepended to every script at load time (scripts.py): one definition of time, run order,
-- owner indexes and retention.
local function num(x) return string.format('%.0f', x) end

-- Server time in ms (and the raw TIME reply): every worker and producer shares one clock.
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t
end

-- Longest delay any script will schedule (365 days, options.MAX_DELAY_MS): a due time always
-- stays a readable date, whatever a caller passed.
local MAX_DUE_DELAY = 31536000000
local function due_at(now, delay)
  return now + math.min(math.max(delay, 0), MAX_DUE_DELAY)
end

-- A job's score in a wait set: priority first (0, no priority, runs first), then FIFO by a 43-bit
-- sequence. priority < 2^10 keeps the sum below 2^53, exact in a double; 2^43 adds are 278
-- years at 1,000 adds a second, so the sequence does not wrap in practice.
local SEQ_SPAN = 8796093022208
local function run_score(priority, seq_key)
  local seq = redis.call('INCR', seq_key) % SEQ_SPAN
  return num(priority * SEQ_SPAN + seq)
end

-- An owned job's id is `<owner>~<local id>` (neither part may contain '~'): the owner comes from
-- the id, so no script reads a field to keep the owner's indexes.
local function owner_of(id) return string.match(id, '^([^~]+)~') end

-- Mirrors a job's move between its queue's state sets (q = '<prefix>:q:<queue>:', parts wait,
-- delayed, active, completed, failed; nil for none) in its owner's index. Unowned jobs: no-op.
local function index_move(q, id, from, to, score)
  local owner = owner_of(id)
  if not owner then return end
  local base = q .. 'o:' .. owner .. ':'
  if from then redis.call('ZREM', base .. from, id) end
  if to then redis.call('ZADD', base .. to, score, id) end
end

-- Deletes jobs listed in one state set (q .. part) with their owner index entries, a few
-- commands for the whole batch rather than a few per job. #ids stays far below unpack's limit.
local function delete_jobs(jp, q, part, ids)
  if #ids == 0 then return end
  local keys, by_owner = {}, {}
  for i, id in ipairs(ids) do
    keys[i] = jp .. id
    local owner = owner_of(id)
    if owner then
      local mine = by_owner[owner] or {}
      mine[#mine + 1] = id
      by_owner[owner] = mine
    end
  end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', q .. part, unpack(ids))
  for owner, mine in pairs(by_owner) do
    redis.call('ZREM', q .. 'o:' .. owner .. ':' .. part, unpack(mine))
  end
end

-- Deletes finished jobs of one set (q .. part) with their owner index entries: first those older
-- than `age` s, then the oldest over `count` (-1: no rule), at most `budget` in all, so one call
-- never stalls Redis; what is left goes on the next call. Returns the number removed.
local function trim_finished(jp, q, part, count, age, budget, now)
  local set = q .. part
  local ids = {}
  if age >= 0 then
    ids = redis.call('ZRANGEBYSCORE', set, '-inf', num(now - age * 1000), 'LIMIT', 0, budget)
  end
  if count >= 0 and #ids < budget then
    local excess = redis.call('ZCARD', set) - #ids - count
    if excess > 0 then
      local extra = redis.call('ZRANGE', set, #ids, #ids + math.min(excess, budget - #ids) - 1)
      for _, id in ipairs(extra) do ids[#ids + 1] = id end
    end
  end
  delete_jobs(jp, q, part, ids)
  return #ids
end


-- Queue controls (ops-control): pause, operator limits and a remote hold live in one hash per
-- queue, q .. 'ctl', so a claim reads them all with one HMGET. Fields: paused ('1'), max and
-- duration_ms (rate limit override, max 0: none), concurrency (override, 0: none), hold_until (ms).
local function ctl_key(q) return q .. 'ctl' end

-- Wakes one idle worker of the queue (workers block on its marker set).
local function wake_workers(q) redis.call('ZADD', q .. 'marker', 0, '0') end

-- Holds the whole queue until now + ms (a handler's RateLimited): claims take none of its jobs
-- before then. A later hold never shortens an earlier, longer one.
local function hold_queue(q, now, ms)
  local until_ms = due_at(now, ms)
  local held = tonumber(redis.call('HGET', ctl_key(q), 'hold_until')) or 0
  if until_ms > held then redis.call('HSET', ctl_key(q), 'hold_until', num(until_ms)) end
end

-- Ends a job as cancelled: failed with reason 'cancelled', whatever attempts remain (cancel.lua,
-- and a cancelled running job whose attempt ends in any other way). `from`: the set it leaves.
local CANCELLED = 'cancelled'
local function fail_cancelled(key, q, id, from, now)
  if from then redis.call('ZREM', q .. from, id) end
  redis.call('HSET', key, 'state', 'failed', 'failed_reason', CANCELLED, 'finished_at', num(now),
    'token', '', 'attempts_made', redis.call('HGET', key, 'attempts_started') or 0)
  redis.call('HDEL', key, 'delay_until')
  redis.call('ZADD', q .. 'failed', num(now), id)
  index_move(q, id, from, 'failed', num(now))
end
