-- Claims up to N runnable jobs across the worker's queues in one atomic step: promotes due delayed
-- jobs, recovers jobs whose lease expired (their worker died), then pops by priority, then in
-- turns across owners (fair_score), FIFO within one.
-- Every move is mirrored in the job's owner index (index_move).
-- KEYS: per queue, 4 keys: wait, delayed, active, failed (QueueKeys.claim_keys)
-- Controls (q .. 'ctl', see the prelude) are honoured per queue before popping: a paused or held
-- queue gives none; a concurrency cap counts the queue's active set; a rate limit keeps a sliding
-- window of claim times (q .. 'rl'), so no window of duration_ms sees more than max starts.
-- Per-owner limits (owner_may_start in the prelude) park the jobs of an owner at its limit.
-- ARGV: job key prefix, max jobs, lease ms, worker token, first queue index (rotation), queue names...,
--   then per queue its catalog limits: rate max, rate duration ms, concurrency (0: none), and the
--   same three per owner
-- Returns {now, next_due (-1 when none), job, job, ...}; next_due also covers the time a limited
-- queue reopens, so an idle worker sleeps until then instead of claiming in a loop.
-- a job is {id, queue, name, data, opts, attempts_started, created_at, token}.
local now, t = server_now()
local jp, want, lease, worker = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local first = tonumber(ARGV[5])
local nq = #KEYS / 4
local now_s = num(now)
local out = {now_s, '-1'}
local next_due = -1
-- Every job this call starts has the same lease deadline.
local deadline = num(now + lease)

-- A waiting job's record in one read: what its start writes on (attempts_started, created_at,
-- hist) and what the worker needs (name, data, opts, meta), whose reply also stands for TYPE: a
-- record of another type answers an error, and only a reply without any of these fields needs
-- TYPE to tell a missing record from a hash that lacks them all. Returns the fields and the type.
local function read_record(key)
  local f = redis.pcall('HMGET', key, 'attempts_started', 'created_at', 'hist', 'name', 'data',
    'opts', 'meta')
  if f.err or not (f[1] or f[2] or f[3] or f[4] or f[5] or f[6] or f[7]) then
    return f, redis.call('TYPE', key)['ok']
  end
  return f, 'hash'
end

-- The attempt a start begins, as text (HINCRBY's count, without the call): a counter stored as
-- anything but a plain decimal goes to HINCRBY itself, which adds to it or refuses as before.
local function next_attempt(key, stored)
  if not stored then return '1' end
  if #stored < 10 and string.find(stored, '^[1-9]%d*$') or stored == '0' then
    return tostring(tonumber(stored) + 1)
  end
  return tostring(redis.call('HINCRBY', key, 'attempts_started', 1))
end

-- `prio`: the job's priority when the caller has read it (nil: read it here).
local function requeue(q, wait, key, id, from, prio)
  prio = prio or tonumber(redis.call('HGET', key, 'priority')) or 0
  local score = fair_score(q, id, prio)
  redis.call('ZADD', wait, score, id)
  redis.call('HSET', key, 'state', 'waiting')
  index_move(q, id, from, 'wait', score)
end

local function quarantine(q, failed, key, id, queue, typ, from)
  redis.call('DEL', key)
  redis.call('HSET', key, 'queue', queue, 'state', 'failed',
    'failed_reason', 'job record is a Redis ' .. typ .. ', not a hash: not run',
    'finished_at', now_s, 'opts', '{}')
  redis.call('ZADD', failed, now_s, id)
  index_move(q, id, from, 'failed', now_s)
  emit(q, 'failed', id, 'r', 'job record is a Redis ' .. typ)
end

-- A job's options (decoded only on the rare lease-expiry path; {} when they do not decode). Only
-- options that differ from JobOptions' defaults are stored: DEFAULT_* (scripts.py) fill the rest.
local function job_opts(key)
  local ok, opts = pcall(cjson.decode, redis.call('HGET', key, 'opts') or '{}')
  if ok and type(opts) == 'table' then return opts end
  return {}
end

-- (count, age s) of a remove_on_fail rule as options.retention_limits computes it.
local function fail_retention(opts)
  local rule = opts['remove_on_fail']
  if rule == nil then return DEFAULT_FAIL_KEEP_COUNT, DEFAULT_FAIL_KEEP_AGE end
  if rule == true then return 0, -1 end
  if type(rule) == 'number' then return rule, -1 end
  if type(rule) == 'table' then
    local count, age = tonumber(rule['count']) or -1, tonumber(rule['age']) or -1
    return count, age
  end
  return -1, -1
end

-- Orders a batch of due delayed jobs by the order they were added (their 'ord'); each row also
-- carries the job's priority for its move to waiting.
local function in_add_order(due)
  local rows = {}
  for i = 1, #due, 2 do
    local ok, f = pcall(redis.call, 'HMGET', jp .. due[i], 'ord', 'priority')
    if not ok then f = {} end
    rows[#rows + 1] = {due[i], tonumber(due[i + 1]), tonumber(f[1]) or 0, tonumber(f[2]) or 0}
  end
  table.sort(rows, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[1] < b[1]
  end)
  return rows
end

-- How many jobs the queue may start now, and when a limited queue reopens (-1: not limited by
-- time; a full concurrency cap reopens when a job ends, which wakes the workers).
local function limit_args(qi) return 5 + nq + qi * 6 end

local function allowance(q, active, qi, c)
  if c[1] then return 0, -1 end
  local hold = tonumber(c[5])
  if hold and hold > now then return 0, hold end
  local base = limit_args(qi)
  local take = want
  local cap = tonumber(c[4]) or tonumber(ARGV[base + 3]) or 0
  if cap > 0 then
    local room = cap - redis.call('ZCARD', active)
    if room <= take then
      -- The cap binds: the next attempt of the queue to end wakes a worker (finish.lua).
      redis.call('HSET', ctl_key(q), 'capped', '1')
      take = room
    end
  end
  if take <= 0 then return 0, -1 end
  local max = tonumber(c[2]) or tonumber(ARGV[base + 1]) or 0
  if max > 0 then
    local dur = tonumber(c[3]) or tonumber(ARGV[base + 2])
    local rl = q .. 'rl'
    redis.call('ZREMRANGEBYSCORE', rl, '-inf', num(now - dur))
    local room = max - redis.call('ZCARD', rl)
    if room <= 0 then
      local oldest = redis.call('ZRANGE', rl, 0, 0, 'WITHSCORES')
      return 0, tonumber(oldest[2]) + dur
    end
    return math.min(take, room), -1, dur, max
  end
  return take, -1
end

-- The jobs a queue's pops started, as score, id pairs for its active set (`pending_active`):
-- added in one call once the pops are done (nothing reads the set in between), or, should the
-- call stop part-way (a record or set of a type Redis refuses), before the error goes on, so
-- every started job is in the set where a lapsed lease finds it.
local pending_active, started_at = nil, {}
local function add_started()
  if pending_active then set_all('ZADD', pending_active, started_at) end
  pending_active, started_at = nil, {}
end
-- The latest pop (id, score, ...) and the first of its jobs not yet settled (started, parked,
-- quarantined or found gone): should the call stop part-way, those go back to the wait set they
-- came from at their scores (their owner indexes never left 'wait'), so a job popped is never
-- lost with the call. `stopped_at`: the job whose start was under way. It is failed with the
-- error as its reason instead: put back first in line, it would stop every later claim.
local popped_now, unsettled_from, stopped_at = nil, 1, nil
local popped_q, popped_wait, popped_failed = nil, nil, nil

local function fail_unstartable(id, why)
  local key = jp .. id
  local reason = 'not started: its claim stopped at it (' ..
    string.sub(type(why) == 'table' and tostring(why.err) or tostring(why), 1, 200) .. ')'
  -- Each step on its own: the error may come from any of the keys they touch.
  local ok_hist, hist = pcall(with_entry, key, 'f', nil, now, reason)
  -- A waiting job holds no token: its state and reason are all that change with the history.
  redis.pcall('HSET', key, 'state', 'failed', 'failed_reason', reason)
  if ok_hist then redis.pcall('HSET', key, 'hist', hist) end
  redis.pcall('ZADD', popped_failed, now_s, id)
  pcall(index_move, popped_q, id, 'wait', 'failed', now_s)
  pcall(emit, popped_q, 'failed', id, 'r', reason)
end

local function put_back_unsettled(why)
  if not popped_now then return end
  local back = {}
  for j = unsettled_from, #popped_now, 2 do
    if j == stopped_at then
      fail_unstartable(popped_now[j], why)
    else
      back[#back + 1] = popped_now[j + 1]
      back[#back + 1] = popped_now[j]
    end
  end
  set_all('ZADD', popped_wait, back)
  popped_now = nil
end

local function claim_queues()
  for k = 0, nq - 1 do
    local qi = (first + k) % nq
    local wait, delayed, active, failed =
      KEYS[qi * 4 + 1], KEYS[qi * 4 + 2], KEYS[qi * 4 + 3], KEYS[qi * 4 + 4]
    local queue = ARGV[6 + qi]
    local q = string.sub(wait, 1, -5)

    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now_s, 'WITHSCORES', 'LIMIT', 0, 1000)
    if #due == 2000 then
      -- A full batch may split jobs due in one millisecond: take that millisecond whole.
      local last = due[#due]
      local before = redis.call('ZRANGEBYSCORE', delayed, '-inf', '(' .. last, 'WITHSCORES')
      local tied = redis.call('ZRANGEBYSCORE', delayed, last, last, 'WITHSCORES')
      due = before
      for _, v in ipairs(tied) do due[#due + 1] = v end
    end
    for _, row in ipairs(in_add_order(due)) do
      local id = row[1]
      local key = jp .. id
      redis.call('ZREM', delayed, id)
      local typ = redis.call('TYPE', key)['ok']
      if typ == 'hash' then
        requeue(q, wait, key, id, 'delayed', row[4])
        -- Due and promoted: its due time and add order have served (records.py reads no due time
        -- for a waiting job).
        redis.call('HDEL', key, 'delay_until', 'ord')
        emit(q, 'waiting', id)
      elseif typ ~= 'none' then quarantine(q, failed, key, id, queue, typ, 'delayed')
      else index_move(q, id, 'delayed', nil) end
    end

    local stalled = redis.call('ZRANGEBYSCORE', active, '-inf', now_s, 'LIMIT', 0, 100)
    for _, id in ipairs(stalled) do
      local key = jp .. id
      redis.call('ZREM', active, id)
      owner_freed(q, id)
      if redis.call('TYPE', key)['ok'] == 'hash' then
        local f = redis.call('HMGET', key, 'attempts_started', 'created_at', 'hist')
        local made = f[1]
        local reason = 'worker lost: lease expired during attempt ' .. made
        redis.call('HDEL', key, 'token')
        redis.call('HSET', key, 'failed_reason', reason,
          'hist', entry_after(f[2], f[3], 'l', made, now))
        local opts = job_opts(key)
        if redis.call('HEXISTS', key, 'cancel') == 1 then
          fail_cancelled(key, q, id, 'active', now)
        elseif tonumber(made) >= (tonumber(opts['attempts']) or DEFAULT_ATTEMPTS) then
          -- The same retention as a failure the handler reported (remove_on_fail).
          local count, age = fail_retention(opts)
          emit(q, 'failed', id, 'a', made, 'r', reason)
          if count == 0 then
            redis.call('DEL', key, logs_key(jp, id))
            index_move(q, id, 'active', nil)
            emit(q, 'removed', id)
          else
            -- Its end is the 'l' entry just written (readers take finished_at from the history).
            redis.call('HSET', key, 'state', 'failed')
            redis.call('ZADD', failed, now_s, id)
            index_move(q, id, 'active', 'failed', now_s)
            trim_finished(jp, q, 'failed', count, age, 1000, now)
          end
        else
          requeue(q, wait, key, id, 'active')
          emit(q, 'retrying', id, 'a', made, 'r', reason)
        end
      else
        index_move(q, id, 'active', nil)
      end
    end

    local c = redis.call('HMGET', ctl_key(q), 'paused', 'max', 'duration_ms', 'concurrency',
      'hold_until', 'owner_max', 'owner_duration_ms', 'owner_concurrency', 'parking')
    if c[9] then unpark_freed(q) end -- the recovered attempts' owners have room again
    local take, reopen, window, max = allowance(q, active, qi, c)
    if reopen >= 0 and (next_due < 0 or reopen < next_due) then next_due = reopen end
    local base = limit_args(qi)
    local ol = owner_limits(q, tonumber(c[8]) or tonumber(ARGV[base + 6]) or 0,
      tonumber(c[6]) or tonumber(ARGV[base + 4]) or 0,
      tonumber(c[7]) or tonumber(ARGV[base + 5]) or 0, c[9] ~= false, worker)
    if take > 0 then owner_recheck(ol, now) end
    local unused = want - take
    want = take
    pending_active = active
    while want > 0 do
      if ol and ol.parked >= PARK_BUDGET then
        next_due = now -- more to pass by: come back at once
        break
      end
      local popped = pop_runnable(ol, wait, want)
      if #popped == 0 then break end
      popped_now, unsettled_from, stopped_at = popped, 1, nil
      popped_q, popped_wait, popped_failed = q, wait, failed
      fair_claimed(q, popped)
      for j = 1, #popped, 2 do
        local id = popped[j]
        local key = jp .. id
        local f, typ = read_record(key)
        if typ == 'hash' and owner_may_start(ol, id, popped[j + 1], now) then
          stopped_at = j -- its start is under way
          local started = next_attempt(key, f[1])
          -- The score it was claimed from rides in its token: a release puts it back there.
          local token = worker .. ':' .. popped[j + 1] .. ':' .. started
          -- The start is the 's' history entry (no processed_at field: readers take it from there).
          redis.call('HSET', key, 'attempts_started', started, 'state', 'active', 'token', token,
            'queue', queue, 'hist', entry_after(f[2], f[3], 's', started, now))
          started_at[#started_at + 1] = deadline
          started_at[#started_at + 1] = id
          unsettled_from, stopped_at = j + 2, nil -- started: in the active set, whatever follows
          index_move(q, id, 'wait', 'active', deadline)
          emit(q, 'active', id, 'a', started)
          if window then redis.call('ZADD', q .. 'rl', now_s, id .. ':' .. started) end
          -- id and queue come from where the job was found, not from fields a writer may lack.
          out[#out + 1] = {id, queue, f[4], f[5], f[6], tonumber(started), f[2], token, f[7]}
          want = want - 1
        elseif typ == 'hash' then
          -- Parked by owner_may_start: its owner is at a limit.
        elseif typ ~= 'none' then
          -- Not runnable whatever happens next: never put back in line, even should this stop.
          unsettled_from = j + 2
          quarantine(q, failed, key, id, queue, typ, 'wait')
        else
          unsettled_from = j + 2 -- gone: nothing to put back
          index_move(q, id, 'wait', nil)
        end
        unsettled_from, stopped_at = j + 2, nil
      end
      popped_now = nil
    end
    add_started()
    if take > 0 then
      local look = owner_next_look(ol)
      if look >= 0 and (next_due < 0 or look < next_due) then next_due = look end
    end

    if window then
      redis.call('PEXPIRE', q .. 'rl', window)
      if redis.call('ZCARD', q .. 'rl') >= max then
        -- The window is full now: report when it reopens, as for a queue found full.
        local oldest = redis.call('ZRANGE', q .. 'rl', 0, 0, 'WITHSCORES')
        reopen = tonumber(oldest[2]) + window
        if next_due < 0 or reopen < next_due then next_due = reopen end
      end
    end
    local filled = want == 0 and unused == 0
    want = want + unused
    if filled and runnable_left(ol, wait) then
      -- Runnable jobs remain after this worker filled up: wake another idle worker for them.
      redis.call('ZADD', q .. 'marker', 0, '0')
    end

    local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if #head > 0 then
      local d = tonumber(head[2])
      if next_due < 0 or d < next_due then next_due = d end
    end
  end
end
local ok, err = pcall(claim_queues)
if not ok then
  add_started()
  put_back_unsettled(err)
  error(err, 0)
end
out[2] = num(next_due)
return out
