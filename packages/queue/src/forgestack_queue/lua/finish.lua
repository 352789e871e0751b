-- Records the end of several attempts in one call (the worker groups attempts that end together).
-- An attempt is recorded only for the worker still holding the job (its token), so a worker whose
-- lease expired cannot overwrite the attempt that replaced it. Every move is mirrored in the
-- job's owner index (index_move).
-- KEYS: none on a single Redis; a cluster worker declares the queue's active set (its slot) and
--   sends one queue's rows per call.
-- ARGV: job key prefix, queue key prefix, JSON array of rows:
--   [queue, id, token, outcome (completed|failed|retry|release|limited), value (result JSON or
--    reason), stacktrace, keep count (-1 none, 0 remove now), keep age s (-1 none), retry delay
--    ms (limited: how long the queue is held), ms the job waited in the worker's prefetch buffer
--    after its claim (absent: 0)],
--   then the most bytes of result a `completed` event carries (absent: any size).
-- A job cancelled while running (its 'cancel' field) is failed as cancelled whatever the outcome
-- but completed: it is never retried.
-- (One JSON argument: packing nine arguments per job costs the worker more than decoding here.)
-- Returns one code per row: 1 recorded; 0 the token no longer holds the job (its lease lapsed
-- and it was recovered); 2 this attempt already ended as the row says and 3 the job is gone,
-- which a retried write whose first reply was lost finds after its own earlier write (see
-- ended_as).
local jp, qp = ARGV[1], ARGV[2]
-- A tagged (Redis Cluster) queue key prefix ends in '{' (keys.queue_key_prefix): the tag closes
-- after the name. A cluster worker calls this per queue, so jp is then that queue's own.
local qs = string.sub(qp, -1) == '{' and '}:' or ':'
local rows = cjson.decode(ARGV[3])
local carry_max = tonumber(ARGV[4])
local now, t = server_now()
-- Finished sets order by microsecond so "newest first" is exact for jobs ending in one millisecond.
local finished_us = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local out, trims, left = {}, {}, {}
-- Set moves gathered over the rows and made one call per set after them (set_all): `left[q]`
-- the ids leaving q's active set, `ended[set]` the score, id pairs entering a finished set.
-- No row reads those sets; what follows the rows (trims, finish and fetch next's claim) sees
-- them moved.
local ended = {}
-- The row under way ({q, id}) while its writes are not all made: if it stops the call, the error
-- path reads what it wrote (stopped_row_moves).
local stopping = nil
local function list_in(t, k)
  local list = t[k]
  if not list then
    list = {}
    t[k] = list
  end
  return list
end

-- A trim rule's name in `trims` (count and age as text), made once per rule rather than per job.
local rule_names = {}
local function rule_name(count, age)
  if count ~= count or age ~= age then return count .. '\0' .. age end -- NaN: no table key
  local by_age = rule_names[count]
  if not by_age then
    by_age = {}
    rule_names[count] = by_age
  end
  local name = by_age[age]
  if not name then
    name = count .. '\0' .. age
    by_age[age] = name
  end
  return name
end

-- `token`: the released attempt's (it goes back to the place it was claimed from); nil for a
-- retry, which takes a new turn.
local function requeue(q, key, id, token)
  local prio = tonumber(redis.call('HGET', key, 'priority')) or 0
  local score
  if token then score = released_score(q, id, prio, token) else score = fair_score(q, id, prio) end
  redis.call('ZADD', q .. 'wait', score, id)
  redis.call('HSET', key, 'state', 'waiting')
  redis.call('ZADD', q .. 'marker', 0, '0')
  index_move(q, id, 'active', 'wait', score)
end

-- `hist` with the start of attempt `made` moved `ms` later: a job the worker claimed ahead (its
-- prefetch buffer) started when it ran, not when it was claimed. Entries are '|'-separated and
-- notes never hold a '|', so an entry's code follows a '|' (or opens the history).
local function start_moved(hist, made, ms)
  local h, mark = '|' .. hist, '|s' .. made .. ':'
  local at, stop, off
  local from = 1
  while true do
    local a, b, o = string.find(h, mark .. '(%d+)', from, false)
    if not a then break end
    at, stop, off, from = a, b, o, b + 1
  end
  if not at then return hist end
  -- Built on `h`, whose added '|' opens the result whether or not the start is the first entry:
  -- that one '|' goes (a history never opens with one).
  local moved = string.sub(h, 1, at - 1) .. mark .. num(tonumber(off) + ms) .. string.sub(h, stop + 1)
  return string.sub(moved, 2)
end

-- Why a row's token no longer holds its job. Its attempt (the token ends with it) already ended
-- as the row says when the history's end of that attempt since the last manual retry is the
-- row's: a lapsed lease always ends it 'l' and the next attempt has the next number; only a
-- release ('x', or the cancel that fails it 'f') lets the same number run again.
local ENDS = {c = true, f = true, r = true, x = true, l = true}
local ROW_ENDS = {completed = 'c', failed = 'f', retry = 'r', release = 'x', limited = 'x'}
local function ended_as(key, f, token, outcome)
  if f.err then return 0 end
  if redis.call('EXISTS', key) == 0 then return 3 end
  local n = string.match(token or '', ':(%d+)$')
  if not n or type(f[4]) ~= 'string' then return 0 end
  local final, released = nil, false
  for code, attempt in string.gmatch(f[4], '(%a)(%d*):[^|]*') do
    if code == 'm' then final, released = nil, false
    elseif attempt == n and ENDS[code] then
      if code == 'x' then released = true elseif not final then final = code end
    end
  end
  local want = ROW_ENDS[outcome]
  if final == 'l' or not want then return 0 end
  if final == want or (want == 'x' and released) or (want ~= 'c' and final == 'f') then
    return 2
  end
  return 0
end

-- Each queue's key prefix, built once per call rather than per row.
local queue_prefixes = {}
-- The rows in turn. A row that stops the call (malformed: the script errors) leaves the rows
-- before it recorded whole (their set moves are made before the error goes on) and its own job
-- in the active set.
local function record_rows()
  for _, row in ipairs(rows) do
    local q = queue_prefixes[row[1]]
    if not q then
      q = qp .. row[1] .. qs
      queue_prefixes[row[1]] = q
    end
    local id, token, outcome = row[2], row[3], row[4]
    local key = jp .. id
    -- pcall: a record overwritten with another type reads as "not ours" instead of aborting.
    -- One read for the fence, the attempt and the history's base, whatever the outcome.
    local f = redis.pcall('HMGET', key, 'token', 'attempts_started', 'created_at', 'hist')
    if f[1] ~= token then
      out[#out + 1] = ended_as(key, f, token, outcome)
    else
      out[#out + 1] = 1
      stopping = {q, id}
      owner_freed(q, id)
      -- The finished set the job enters (nil: none) and its score there.
      local into_set, into_score = nil, nil
      local made, created, hist = f[2], f[3], f[4]
      if hist and (row[10] or 0) > 0 then hist = start_moved(hist, made, row[10]) end
      if outcome ~= 'completed' and outcome ~= 'failed'
          and redis.call('HEXISTS', key, 'cancel') == 1 then
        -- With the history as moved above: a job that ran from the buffer started when it ran.
        fail_cancelled(key, q, id, 'active', now, {made, created, hist})
      elseif outcome == 'completed' or outcome == 'failed' then
        -- The token goes (no attempt holds the job) before the outcome's fields come, so the hash
        -- never holds more fields than it keeps; finished_at is the history's last entry. A job
        -- removed as it ends (keep count 0) is not written at all.
        local keep = row[7] ~= 0
        if outcome == 'failed' then
          emit(q, 'failed', id, 'a', made, 'r', string.sub(row[5], 1, 500))
          if keep then
            redis.call('HDEL', key, 'token')
            redis.call('HSET', key, 'state', outcome, 'failed_reason', row[5], 'stacktrace', row[6],
              'hist', entry_after(created, hist, 'f', made, now, row[5]))
          end
        else
          -- An earlier attempt's failure stays in the history, not in the top-level fields (a
          -- first attempt has none: a manual retry clears them).
          local earlier = tonumber(made) > 1
          -- A job removed as it completes takes its result along in the event, for waiters; one
          -- over carry_max would be copied into the stream and every reader of it, so its event
          -- says only how large it was ('vx'), and a waiter answers that it was too large.
          if keep then emit(q, 'completed', id, 'a', made)
          elseif carry_max and #row[5] > carry_max then
            emit(q, 'completed', id, 'a', made, 'vx', #row[5])
          else emit(q, 'completed', id, 'a', made, 'v', row[5]) end
          if keep then
            if earlier then redis.call('HDEL', key, 'token', 'failed_reason', 'stacktrace')
            else redis.call('HDEL', key, 'token') end
            redis.call('HSET', key, 'state', outcome, 'result', row[5],
              'hist', entry_after(created, hist, 'c', made, now))
          end
        end
        local count, age = row[7], row[8]
        if count == 0 then
          redis.call('DEL', key, logs_key(jp, id))
          index_move(q, id, 'active', nil)
          emit(q, 'removed', id)
        else
          finished_us = finished_us + 0.001
          local score = string.format('%.3f', finished_us)
          into_set, into_score = q .. outcome, score
          index_move(q, id, 'active', outcome, score)
          -- Trim once per set and rule per call, not once per job.
          local rule = q .. outcome .. '\0' .. rule_name(count, age)
          local r = trims[rule]
          if r then r[3], r[4] = count, age else trims[rule] = {q, outcome, count, age} end
        end
      elseif outcome == 'retry' then
        redis.call('HDEL', key, 'token')
        hist = entry_after(created, hist, 'r', made, now, row[5])
        emit(q, 'retrying', id, 'a', made, 'r', string.sub(row[5], 1, 500))
        local delay = row[9]
        if delay > 0 then
          local due = num(due_at(now, delay))
          redis.call('ZADD', q .. 'delayed', due, id)
          redis.call('HSET', key, 'state', 'delayed', 'failed_reason', row[5], 'stacktrace', row[6],
            'delay_until', due, 'ord', redis.call('INCR', q .. 'seq'),
            'hist', entry_after(created, hist, 'd', nil, now, num(delay)))
          redis.call('ZADD', q .. 'marker', 0, '0')
          index_move(q, id, 'active', 'delayed', due)
          emit(q, 'delayed', id, 'due', due)
        else
          redis.call('HSET', key, 'failed_reason', row[5], 'stacktrace', row[6], 'hist', hist)
          requeue(q, key, id)
        end
      else
        -- release (the worker is shutting down) or limited (the handler's remote side said to wait,
        -- which holds the whole queue): the attempt does not count.
        local why = 'released'
        if outcome == 'limited' then
          hold_queue(q, now, row[9])
          why = 'rate limited'
        end
        redis.call('HDEL', key, 'token')
        redis.call('HSET', key, 'attempts_started', tonumber(made) - 1,
          'hist', entry_after(created, hist, 'x', made, now, why))
        requeue(q, key, id, token)
        emit(q, 'waiting', id, 'a', made, 'r', why)
      end
      -- The row is done: its set moves join the batch's. A row that stops the call makes none,
      -- so its job stays in the active set, where a lapsed lease finds it.
      local leaving = list_in(left, q)
      leaving[#leaving + 1] = id
      if into_set then
        local into = list_in(ended, into_set)
        into[#into + 1] = into_score
        into[#into + 1] = id
      end
      stopping = nil
    end
  end
end
local ok, err = pcall(record_rows)
-- Each set's move on its own: one that Redis refuses (a set overwritten with another type) must
-- not keep the other queues' rows, already recorded, out of their sets. The first error, the
-- rows' before the moves', goes on once every move is made.
local function move_all(cmd, key, args)
  local moved, why = pcall(set_all, cmd, key, args)
  if not moved and ok then ok, err = false, why end
end
for q, ids in pairs(left) do move_all('ZREM', q .. 'active', ids) end
for set, members in pairs(ended) do move_all('ZADD', set, members) end
-- The row that stopped the call keeps what it wrote. Its job stays in the active set only while
-- its record still says active (its token gone, not yet put back: a lapsed lease recovers it);
-- a record it finished, requeued or deleted leaves the set, and a finished one is in its
-- finished set, so the lease never runs a recorded job again.
if stopping then
  local q, id = stopping[1], stopping[2]
  local state = redis.pcall('HGET', jp .. id, 'state')
  if state ~= 'active' then
    move_all('ZREM', q .. 'active', {id})
    if state == 'completed' or state == 'failed' then
      finished_us = finished_us + 0.001
      move_all('ZADD', q .. state, {'NX', string.format('%.3f', finished_us), id})
    end
  end
end
if not ok then error(err, 0) end
-- A queue that reached its concurrency cap (claim.lua's 'capped') has room again: wake a worker.
-- Owners with jobs parked at their limits get one back per attempt that ended (unpark_freed).
for q in pairs(left) do
  local c = redis.call('HMGET', ctl_key(q), 'capped', 'parking')
  if c[1] then
    redis.call('HDEL', ctl_key(q), 'capped')
    wake_workers(q)
  end
  if c[2] then unpark_freed(q) end
end
-- At most 1,000 removals per set and rule per call: a count rule set low over a large set
-- finishes over later calls (or Queue.trim) instead of stalling Redis.
for _, rule in pairs(trims) do trim_finished(jp, rule[1], rule[2], rule[3], rule[4], 1000, now) end
return out
