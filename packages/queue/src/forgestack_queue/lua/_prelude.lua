-- Prepended to every script at load time (scripts.py): one definition of time, owner indexes,
-- retention and run order (fair_score, at the end).
-- Whole numbers as decimal text. An integer within 2^53 (what the scripts nearly always
-- format) goes through '%d', which prints the same digits as '%.0f' without libc's floating
-- point printer; zero (whose sign '%.0f' keeps), fractions, huge values and NaN keep '%.0f'.
local TWO_53 = 9007199254740992
local function num(x)
  if x ~= 0 and x < TWO_53 and x > -TWO_53 and x == math.floor(x) then
    return string.format('%d', x)
  end
  return string.format('%.0f', x)
end

-- Server time in ms (and the raw TIME reply): every worker and producer shares one clock. Read
-- once per script call: the parts of a composed call (add_followed.lua's two adds, finish and
-- fetch next) happen at one instant, as the atomic call they are.
local now_ms, now_reply = nil, nil
local function server_now()
  if not now_ms then
    now_reply = redis.call('TIME')
    now_ms = tonumber(now_reply[1]) * 1000 + math.floor(tonumber(now_reply[2]) / 1000)
  end
  return now_ms, now_reply
end

-- Longest delay any script will schedule (365 days, options.MAX_DELAY_MS): a due time always
-- stays a readable date, whatever a caller passed.
local MAX_DUE_DELAY = 31536000000
local function due_at(now, delay)
  return now + math.min(math.max(delay, 0), MAX_DUE_DELAY)
end

-- An owned job's id is `<owner>~<local id>` (neither part may contain '~'): the owner comes from
-- the id, so no script reads a field to keep the owner's indexes. A plain find, not a pattern:
-- the pattern engine backtracks over the whole id, several times per job.
-- The last id asked about is remembered: an add, a claim or a finish asks about one job several
-- times in a row (its run order, its index, its event), and equal texts compare in one step.
local owner_id, owner_found = nil, nil
local function owner_of(id)
  if id == owner_id then return owner_found end
  local at = string.find(id, '~', 1, true)
  local owner = nil
  if at and at > 1 then owner = string.sub(id, 1, at - 1) end
  owner_id, owner_found = id, owner
  return owner
end

-- One ZADD or ZREM for a batch of a call's jobs instead of one per job: a call from a script
-- costs several times what one more member does. `args`: ZADD's score, member pairs or ZREM's
-- members, sent 1,000 at a time (Lua's unpack has a limit).
local SET_CHUNK = 1000
local function set_all(cmd, key, args)
  local n = #args
  for i = 1, n, SET_CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + SET_CHUNK - 1, n)))
  end
end

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
-- the caller's pairs (at most two). The length is read once per queue per script call and kept
-- as the text redis.call would make of the number (false: events off), so no event formats it.
-- Fixed arguments, not varargs: no table is built and unpacked per event.
local EVENTS_MAXLEN_DEFAULT_TEXT = '10000'
local events_maxlen, events_key = {}, {}
local function emit(q, event, id, k1, v1, k2, v2)
  local cap = events_maxlen[q]
  if cap == nil then
    local n = tonumber(redis.call('GET', q .. 'events:maxlen'))
    if n == nil then
      cap = EVENTS_MAXLEN_DEFAULT_TEXT
    else
      cap = n > 0 and string.format('%.17g', n)
    end
    events_maxlen[q] = cap
  end
  if not cap then return end
  local s = events_key[q]
  if not s then
    s = q .. 'events'
    events_key[q] = s
  end
  local owner = owner_of(id)
  if owner then
    if k2 ~= nil then
      redis.call('XADD', s, 'MAXLEN', '~', cap, '*', 'e', event, 'j', id, 'o', owner, k1, v1, k2, v2)
    elseif k1 ~= nil then
      redis.call('XADD', s, 'MAXLEN', '~', cap, '*', 'e', event, 'j', id, 'o', owner, k1, v1)
    else
      redis.call('XADD', s, 'MAXLEN', '~', cap, '*', 'e', event, 'j', id, 'o', owner)
    end
  elseif k2 ~= nil then
    redis.call('XADD', s, 'MAXLEN', '~', cap, '*', 'e', event, 'j', id, k1, v1, k2, v2)
  elseif k1 ~= nil then
    redis.call('XADD', s, 'MAXLEN', '~', cap, '*', 'e', event, 'j', id, k1, v1)
  else
    redis.call('XADD', s, 'MAXLEN', '~', cap, '*', 'e', event, 'j', id)
  end
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
    -- Fewer bytes than HISTORY_MAX cannot hold HISTORY_MAX separators: only a longer history
    -- is counted (a copy of it, by gsub).
    if #h >= HISTORY_MAX then
      local _, n = string.gsub(h, '|', '|')
      if n >= HISTORY_MAX then h = string.sub(h, string.find(h, '|', 1, true) + 1) end
    end
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

-- A job's log lines (a list, written by report.lua), deleted with the job: its key is the job
-- key prefix `jp` (which ends in 'job:', keys.QueueKeys.job_prefix) with 'logs:' for 'job:', so
-- `<prefix>:logs:<id>` in the plain layout and `<prefix>:q:{<queue>}:logs:<id>` (the queue's
-- slot) in the tagged one.
local function logs_key(jp, id) return string.sub(jp, 1, -5) .. 'logs:' .. id end

-- Deletes jobs listed in one state set (q .. part) with their owner index entries, a few
-- commands for the whole batch rather than a few per job. #ids stays far below unpack's limit.
local function delete_jobs(jp, q, part, ids)
  if #ids == 0 then return end
  local keys, by_owner, n = {}, {}, #ids
  local logs = logs_key(jp, '')
  for i, id in ipairs(ids) do
    keys[i] = jp .. id
    keys[n + i] = logs .. id
    local owner = owner_of(id)
    if owner then
      local mine = by_owner[owner] or {}
      mine[#mine + 1] = id
      by_owner[owner] = mine
    end
  end
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
-- `f`: the job's {attempts_started, created_at, hist} when the caller has them (finish.lua, whose
-- history may hold a start it moved), else read here.
local function fail_cancelled(key, q, id, from, now, f)
  if from then redis.call('ZREM', q .. from, id) end
  f = f or redis.call('HMGET', key, 'attempts_started', 'created_at', 'hist')
  local made = f[1] or '0'
  redis.call('HDEL', key, 'token', 'delay_until', 'ord', 'stacktrace')
  redis.call('HSET', key, 'state', 'failed', 'failed_reason', CANCELLED,
    'hist', entry_after(f[2], f[3], 'f', made, now, CANCELLED))
  redis.call('ZADD', q .. 'failed', num(now), id)
  index_move(q, id, from, 'failed', num(now))
  emit(q, 'failed', id, 'a', made, 'r', CANCELLED)
end

-- A job's score in a wait set: priority first (0, no priority, runs first), then a 43-bit tag.
-- priority < 2^10 keeps the sum below 2^53, exact in a double; tags rise by at most one per job
-- entering a wait set, so 2^43 of them last 278 years at 1,000 a second.
local SEQ_SPAN = 8796093022208

-- Fair order across owners (start-time fair queueing). Each priority p has a clock: the highest
-- tag claimed at p (q .. 'fair', field 'clock:<p>'). A job entering the wait set gets the tag
-- after both the clock and its owner's last waiting tag at p. An owner's burst thus takes tags far
-- ahead of the clock while another owner's next job lands just past it: claims, which still pop
-- the lowest score in one ZPOPMIN, take one job of every owner with jobs waiting at p per tag,
-- whatever the backlogs, so no owner waits behind more than one job per other owner (plus higher
-- priorities). Tags rise within an owner: FIFO holds per owner and priority. Unowned jobs are one
-- more owner, their last tag kept in the same hash ('last:<p>'); an owned job's last tag is the
-- top of its owner's wait index at p, so nothing is left behind when an owner leaves. Reads are
-- cached for the script call: within one call only this code moves clocks and tags.
-- A priority as `..` writes it, without libc's printf for the usual 0 (priorities are whole
-- numbers, so the two agree).
local function prio_text(priority)
  if priority == 0 then return '0' end
  return priority .. ''
end

-- The per-call caches, by queue, then priority (clocks) or owner ('' for unowned jobs) and
-- priority (last tags): tables, not joined texts, so a cached read formats no number.
local fair_clocks, fair_lasts = {}, {}
-- Priority 0's upper bound, as fair_score writes the bounds of any other priority.
local P0_BELOW = '(8796093022208'

local function fair_clock(q, priority)
  local clocks = fair_clocks[q]
  if not clocks then
    clocks = {}
    fair_clocks[q] = clocks
  end
  local clock = clocks[priority]
  if clock then return clock end
  clock = tonumber(redis.call('HGET', q .. 'fair', 'clock:' .. prio_text(priority)))
  if not clock then
    -- First use of the priority. A queue from before the fair order has jobs waiting with tags
    -- from its old add counter (q .. 'seq'): the clock starts at the first of them, so new
    -- owners take turns with that backlog instead of all running before it.
    local lo = priority * SEQ_SPAN
    local head = redis.call('ZRANGEBYSCORE', q .. 'wait', num(lo), '(' .. num(lo + SEQ_SPAN),
      'WITHSCORES', 'LIMIT', '0', '1')
    clock = head[2] and tonumber(head[2]) - lo or 0
    redis.call('HSET', q .. 'fair', 'clock:' .. prio_text(priority), num(clock))
  end
  clocks[priority] = clock
  return clock
end

local function fair_score(q, id, priority)
  local lo = priority * SEQ_SPAN
  local clock = fair_clock(q, priority)
  local owner = owner_of(id)
  local by_owner = fair_lasts[q]
  if not by_owner then
    by_owner = {}
    fair_lasts[q] = by_owner
  end
  local lasts = by_owner[owner or '']
  if not lasts then
    lasts = {}
    by_owner[owner or ''] = lasts
  end
  local last = lasts[priority]
  if not last then
    if not owner then
      -- Never set: unowned jobs of a queue from before the fair order have tags up to its old
      -- add counter.
      local text = redis.call('HGET', q .. 'fair', 'last:' .. prio_text(priority))
      last = tonumber(text or redis.call('GET', q .. 'seq')) or 0
    else
      local top = redis.call('ZREVRANGEBYSCORE', q .. 'o:' .. owner .. ':wait',
        priority == 0 and P0_BELOW or '(' .. num(lo + SEQ_SPAN), priority == 0 and '0' or num(lo),
        'WITHSCORES', 'LIMIT', '0', '1')
      last = top[2] and tonumber(top[2]) - lo or 0
    end
  end
  local tag = math.max(clock, last) + 1
  lasts[priority] = tag
  if not owner then redis.call('HSET', q .. 'fair', 'last:' .. prio_text(priority), num(tag)) end
  return num(lo + tag)
end

-- Where a job released unspent goes back in line: the score it was claimed from, which claim.lua
-- writes into its token ('<worker>:<score>:<attempt>'), so it runs before the jobs added after it
-- (a worker that stops, pauses or lets a prefetched job's shelf life pass hands back its place,
-- not its turn). A new turn (fair_score) when the token holds none or the job's priority changed
-- since. The whole token is matched, field by field: in the earlier form ('<worker>:<attempt>',
-- the worker part itself '<id>:<random hex>') a hex part of digits only would read as a place.
local function released_score(q, id, priority, token)
  local score = token and string.match(token, '^[^:]+:[^:]+:(%d+):%d+$')
  local at = tonumber(score)
  local lo = priority * SEQ_SPAN
  if at and at > lo and at < lo + SEQ_SPAN then return score end
  return fair_score(q, id, priority)
end

-- Moves the clocks past the jobs a claim popped (a ZPOPMIN reply: id, score, ..., lowest score
-- first). Scores order by priority, then tag: when the first and the last popped share a
-- priority, every job between does and the last holds the top tag, so only those two are read.
local function fair_claimed(q, popped)
  local top = {}
  local n = #popped
  local first = n > 0 and math.floor(tonumber(popped[2]) / SEQ_SPAN)
  local last = n > 0 and tonumber(popped[n])
  local from = 2
  if n > 0 and math.floor(last / SEQ_SPAN) == first then from = n end
  for j = from, n, 2 do
    local score = tonumber(popped[j])
    local p = math.floor(score / SEQ_SPAN)
    local tag = score - p * SEQ_SPAN
    if tag > (top[p] or 0) then top[p] = tag end
  end
  for p, tag in pairs(top) do
    if tag > fair_clock(q, p) then
      redis.call('HSET', q .. 'fair', 'clock:' .. prio_text(p), num(tag))
      fair_clocks[q][p] = tag
    end
  end
end

-- Per-owner limits (QueueLimits.per_owner): a cap on an owner's jobs running at once and a rate
-- limit on its starts (a sliding window of claim times, q .. 'orl:' .. owner), both fleet-wide.
-- Unowned jobs answer to the queue's limits only. A claim that pops a job whose owner is at a
-- limit parks it: the job stays waiting in the same sets, at its score minus PARK_SHIFT (below
-- zero, order kept), and claims take only scores >= 0 while anything is parked; so a limited
-- owner's backlog is passed by once, not on every claim, and the other owners' jobs run. The
-- owner goes in q .. 'parked', scored by when a claim looks again (its window reopens; a cap:
-- PARK_RECHECK_MS, a backstop), and the ctl field 'parking' tells claims and finish.lua to look
-- at all. An attempt of a parked owner that ends gives one parked job back at once (finish.lua).
-- A job given back takes its old score: first in its owner's line, ahead of its later jobs.
-- Queues without per-owner limits and nothing parked run none of this (ol is nil).
local PARK_SHIFT = 1024 * SEQ_SPAN
local PARK_RECHECK_MS = 1000
local PARK_BUDGET = 500

local function owner_limits(q, cap, max, dur, parking, member)
  if cap <= 0 and max <= 0 and not parking then return nil end
  return {q = q, cap = cap, max = max, dur = dur, parking = parking, member = member,
    room = {}, listed = {}, parked = 0}
end

-- How many jobs the owner may start now, and when its window reopens (-1: not by time).
local function owner_room(ol, owner, now)
  local room, reopen = math.huge, -1
  if ol.cap > 0 then room = ol.cap - redis.call('ZCARD', ol.q .. 'o:' .. owner .. ':active') end
  if ol.max > 0 and room > 0 then
    local rl = ol.q .. 'orl:' .. owner
    redis.call('ZREMRANGEBYSCORE', rl, '-inf', num(now - ol.dur))
    local left = ol.max - redis.call('ZCARD', rl)
    if left <= 0 then
      reopen = tonumber(redis.call('ZRANGE', rl, 0, 0, 'WITHSCORES')[2]) + ol.dur
    end
    room = math.min(room, left)
  end
  return room, reopen
end

local function set_parking(q, on)
  if on then redis.call('HSET', ctl_key(q), 'parking', '1')
  else redis.call('HDEL', ctl_key(q), 'parking') end
end

-- Gives up to n of the owner's parked jobs their scores back; drops the owner from q .. 'parked'
-- when none is left. Returns how many moved and whether some are still parked.
local function unpark(q, owner, n)
  local idx = q .. 'o:' .. owner .. ':wait'
  local rows = redis.call('ZRANGEBYSCORE', idx, '-inf', '(0', 'WITHSCORES', 'LIMIT', 0, n + 1)
  local moved = math.min(#rows / 2, n)
  for j = 1, 2 * moved, 2 do
    local score = num(tonumber(rows[j + 1]) + PARK_SHIFT)
    redis.call('ZADD', q .. 'wait', score, rows[j])
    redis.call('ZADD', idx, score, rows[j])
  end
  local left = #rows / 2 > n
  if not left then redis.call('ZREM', q .. 'parked', owner) end
  return moved, left
end

-- The runnable part of a wait set, lowest scores first, taken out of it (ZPOPMIN when nothing
-- is parked, which is always so without per-owner limits).
local function pop_runnable(ol, wait, n)
  if not (ol and ol.parking) then return redis.call('ZPOPMIN', wait, n) end
  local rows = redis.call('ZRANGEBYSCORE', wait, '0', '+inf', 'WITHSCORES', 'LIMIT', 0, n)
  local ids = {}
  for j = 1, #rows, 2 do ids[#ids + 1] = rows[j] end
  if #ids > 0 then redis.call('ZREM', wait, unpack(ids)) end
  return rows
end

local function runnable_left(ol, wait)
  if ol and ol.parking then return redis.call('ZCOUNT', wait, '0', '+inf') > 0 end
  return redis.call('ZCARD', wait) > 0
end

-- Claim's gate for one popped job: true when it may start (its owner's start is counted), else
-- the job is parked. `score` is its wait score.
local function owner_may_start(ol, id, score, now)
  if not ol or (ol.cap <= 0 and ol.max <= 0) then return true end
  local owner = owner_of(id)
  if not owner then return true end
  local room, reopen = ol.room[owner], -1
  if room == nil then room, reopen = owner_room(ol, owner, now) end
  if room > 0 then
    ol.room[owner] = room - 1
    if ol.max > 0 then
      local rl = ol.q .. 'orl:' .. owner
      redis.call('ZADD', rl, num(now), id .. ':' .. ol.member)
      redis.call('PEXPIRE', rl, ol.dur)
    end
    return true
  end
  local parked = num(tonumber(score) - PARK_SHIFT)
  redis.call('ZADD', ol.q .. 'wait', parked, id)
  redis.call('ZADD', ol.q .. 'o:' .. owner .. ':wait', parked, id)
  ol.room[owner] = 0
  if not ol.listed[owner] then
    -- Room used up by this claim: the window's reopening is not known yet.
    if reopen < 0 and ol.max > 0 then
      local _
      _, reopen = owner_room(ol, owner, now)
    end
    local recheck = reopen >= 0 and reopen or now + PARK_RECHECK_MS
    redis.call('ZADD', ol.q .. 'parked', 'LT', num(recheck), owner)
    ol.listed[owner] = true
  end
  if not ol.parking then
    set_parking(ol.q, true)
    ol.parking = true
  end
  ol.parked = ol.parked + 1
  return false
end

-- Claim's look at the parked owners due for it: each gets back as many jobs as it has room for
-- (all, up to PARK_BUDGET, once its limits are gone).
local function owner_recheck(ol, now)
  if not (ol and ol.parking) then return end
  local parked = ol.q .. 'parked'
  for _, owner in ipairs(redis.call('ZRANGEBYSCORE', parked, '-inf', num(now), 'LIMIT', 0, 100)) do
    local room, reopen = owner_room(ol, owner, now)
    local left = true
    ol.listed[owner] = true
    if room > 0 then
      ol.room[owner] = room
      left = select(2, unpark(ol.q, owner, math.min(room, PARK_BUDGET)))
    end
    if left then
      -- Room beyond the budget (its limits are gone): the rest on the next claim.
      local again = now + PARK_RECHECK_MS
      if reopen >= 0 then again = reopen elseif room > PARK_BUDGET then again = now end
      redis.call('ZADD', parked, 'XX', num(again), owner)
    end
  end
end

-- After claim's pops: when a claim must look at parked owners next (-1: nothing is parked).
local function owner_next_look(ol)
  if not (ol and ol.parking) then return -1 end
  local head = redis.call('ZRANGE', ol.q .. 'parked', 0, 0, 'WITHSCORES')
  if #head == 0 then
    set_parking(ol.q, false)
    return -1
  end
  return tonumber(head[2])
end

-- finish.lua (and claim.lua's lease recovery): notes each owned attempt that ended; then, for a
-- queue with parked owners, gives each such owner one parked job back per attempt that ended
-- (the slot it freed).
local freed_by_queue = {}
local function owner_freed(q, id)
  local owner = owner_of(id)
  if not owner then return end
  local freed = freed_by_queue[q] or {}
  freed[owner] = (freed[owner] or 0) + 1
  freed_by_queue[q] = freed
end

local function unpark_freed(q)
  local freed = freed_by_queue[q]
  if not freed then return end
  freed_by_queue[q] = nil
  local moved = 0
  for owner, n in pairs(freed) do
    if redis.call('ZSCORE', q .. 'parked', owner) then moved = moved + unpark(q, owner, n) end
  end
  if moved > 0 then wake_workers(q) end
  if redis.call('EXISTS', q .. 'parked') == 0 then set_parking(q, false) end
end
