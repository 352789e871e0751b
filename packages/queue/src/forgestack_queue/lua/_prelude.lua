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

-- Events: every move appends to the queue's stream (q .. 'events') inside the script that makes
-- it, so a reader never sees a state without its event or the reverse. The stream is capped
-- (XADD MAXLEN ~) at the length in q .. 'events:maxlen' (workers write the setting at start-up;
-- 10,000 when unset; 0 turns events off). Fields: e event, j job id, o owner (owned jobs), then
-- the caller's pairs. The length is read once per queue per script call.
local EVENTS_MAXLEN_DEFAULT = 10000
local events_maxlen = {}
local function emit(q, event, id, ...)
  local cap = events_maxlen[q]
  if cap == nil then
    cap = tonumber(redis.call('GET', q .. 'events:maxlen')) or EVENTS_MAXLEN_DEFAULT
    events_maxlen[q] = cap
  end
  if cap <= 0 then return end
  local f = {'e', event, 'j', id}
  local owner = owner_of(id)
  if owner then f[#f + 1] = 'o'; f[#f + 1] = owner end
  for _, v in ipairs({...}) do f[#f + 1] = v end
  redis.call('XADD', q .. 'events', 'MAXLEN', '~', cap, '*', unpack(f))
end

-- History: one packed field per job ('hist'), entries `<code><attempt>:<ms since created_at>`
-- with an optional `:<note>` (a reason, cut to 80 bytes), joined by '|', the last 50 kept.
-- The add itself is implied by created_at (no entry, so a plain waiting job stores no 'hist').
-- Codes: d delayed (note: the delay in ms), s started, c completed, f failed (note: the reason,
-- 'cancelled' for a cancel), r retry queued, l lease lost, x claim undone, released at shutdown or
-- put back by a remote rate limit (note: why), m manual retry, p promoted. history.py decodes it.
-- The history is also where readers find when the latest attempt started and when a finished
-- job ended (records.py), so no script stores those times in fields of their own.
local HISTORY_MAX = 50
-- `hist` (the job's, as read with its `created_at`) with one more entry, for the caller's own
-- HSET: a script that reads other fields anyway reads these two with them.
local function entry_after(created_at, hist, code, attempt, now, note)
  local entry = code .. (attempt or '') .. ':' .. num(now - (tonumber(created_at) or now))
  if note then entry = entry .. ':' .. string.gsub(string.sub(note, 1, 80), '|', '/') end
  local h = hist
  if h then
    h = h .. '|' .. entry
    local _, n = string.gsub(h, '|', '|')
    if n >= HISTORY_MAX then h = string.sub(h, string.find(h, '|', 1, true) + 1) end
  else
    h = entry
  end
  return h
end

-- The job's 'hist' with one more entry (one HMGET), for the caller's own HSET.
local function with_entry(key, code, attempt, now, note)
  local f = redis.call('HMGET', key, 'created_at', 'hist')
  return entry_after(f[1], f[2], code, attempt, now, note)
end

-- A job's log lines (a list, written by report.lua): `<prefix>:logs:<id>`, deleted with the job.
local function logs_key(q, id) return string.match(q, '^(.*:)q:[^:]*:$') .. 'logs:' .. id end

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
  for i, id in ipairs(ids) do keys[#ids + i] = logs_key(q, id) end
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', q .. part, unpack(ids))
  for _, id in ipairs(ids) do emit(q, 'removed', id) end
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
  local f = redis.call('HMGET', key, 'attempts_started', 'created_at', 'hist')
  local made = f[1] or '0'
  redis.call('HDEL', key, 'token', 'delay_until', 'ord', 'stacktrace')
  redis.call('HSET', key, 'state', 'failed', 'failed_reason', CANCELLED,
    'hist', entry_after(f[2], f[3], 'f', made, now, CANCELLED))
  redis.call('ZADD', q .. 'failed', num(now), id)
  index_move(q, id, from, 'failed', num(now))
  emit(q, 'failed', id, 'a', made, 'r', CANCELLED)
end
