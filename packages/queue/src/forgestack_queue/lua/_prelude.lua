-- Prepended to every script at load time (scripts.py): one definition of time, owner indexes,
-- retention and run order (fair_score, at the end).
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
local fair_cache = {}
local function fair_get(field_key, read)
  local v = fair_cache[field_key]
  if v == nil then
    v = read()
    fair_cache[field_key] = v
  end
  return v
end

local function fair_clock(q, priority)
  return fair_get(q .. '\0clock\0' .. priority, function()
    return tonumber(redis.call('HGET', q .. 'fair', 'clock:' .. priority)) or 0
  end)
end

local function fair_score(q, id, priority)
  local lo = priority * SEQ_SPAN
  local clock = fair_clock(q, priority)
  local owner = owner_of(id)
  local last_key = q .. '\0last\0' .. (owner or '') .. '\0' .. priority
  local last = fair_get(last_key, function()
    if not owner then
      return tonumber(redis.call('HGET', q .. 'fair', 'last:' .. priority)) or 0
    end
    local top = redis.call('ZREVRANGEBYSCORE', q .. 'o:' .. owner .. ':wait',
      '(' .. num(lo + SEQ_SPAN), num(lo), 'WITHSCORES', 'LIMIT', 0, 1)
    return top[2] and tonumber(top[2]) - lo or 0
  end)
  local tag = math.max(clock, last) + 1
  fair_cache[last_key] = tag
  if not owner then redis.call('HSET', q .. 'fair', 'last:' .. priority, num(tag)) end
  return num(lo + tag)
end

-- Moves the clocks past the jobs a claim popped (a ZPOPMIN reply: id, score, ...).
local function fair_claimed(q, popped)
  local top = {}
  for j = 2, #popped, 2 do
    local score = tonumber(popped[j])
    local p = math.floor(score / SEQ_SPAN)
    local tag = score - p * SEQ_SPAN
    if tag > (top[p] or 0) then top[p] = tag end
  end
  for p, tag in pairs(top) do
    if tag > fair_clock(q, p) then
      redis.call('HSET', q .. 'fair', 'clock:' .. p, num(tag))
      fair_cache[q .. '\0clock\0' .. p] = tag
    end
  end
end
