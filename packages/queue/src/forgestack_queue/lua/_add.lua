-- Adds jobs atomically; an id that already exists is returned, never created twice (idempotent add).
-- All or nothing: every id is checked before anything is written, so a batch with one id that
-- belongs to another queue writes no job at all.
-- A function, not a script: add.lua runs it on its own KEYS and ARGV, add_followed.lua on two
-- ranges of its own, read in place (a copy of each range cost more than the add of one job).
-- keys[ko + 1 .. ko + nk]: wait, delayed, seq, marker, [queues,] metrics (the queue's hash:
--   'added' counts new jobs); the global set of queue names only on a single Redis (a cluster
--   producer adds the name itself: the set lives in another slot)
-- argv[ao + 1 .. ao + na]: job key prefix, queue key prefix ('<prefix>:q:<queue>:'), queue, then
--   groups of 7: id (an owned job's is '<owner>~<local id>'), name, data, opts, priority,
--   delay_ms, meta ('' for none)
-- data1: when given, the first job's data instead of its argument (add_followed.lua's count).
-- Job records are `jp .. id` (derived, the queue's slot in the tagged layout, whose records are
-- per queue: an id of another queue is then simply another key, never a clash).
-- Returns {'clash', id, its queue} when an id is another queue's (or not a job record), else one
-- {id, created (1|0), state} per job.
local function add_jobs(keys, ko, nk, argv, ao, na, data1)
  local now = server_now()
  local created_at = num(now)
  local jp, q, queue = argv[ao + 1], argv[ao + 2], argv[ao + 3]
  local first, last = ao + 4, ao + na
  local found = {}
  for i = first, last, 7 do
    local id = argv[i]
    local key = jp .. id
    -- EXISTS first: a new id (nearly every one) gets a number back, not TYPE's status table.
    local typ = 'none'
    if redis.call('EXISTS', key) == 1 then typ = redis.call('TYPE', key)['ok'] end
    if typ ~= 'none' then
      local f = {false, false}
      if typ == 'hash' then f = redis.call('HMGET', key, 'queue', 'state') end
      if f[1] ~= queue then return {'clash', id, f[1] or ''} end
      found[id] = f[2] or 'failed'
    end
  end

  local out, woke, added = {}, false, 0
  if nk == 6 then redis.call('SADD', keys[ko + 5], queue) end
  for i = first, last, 7 do
    local id = argv[i]
    if found[id] then
      out[#out + 1] = {id, 0, found[id]}
    else
      local key = jp .. id
      local data = argv[i + 2]
      if data1 and i == first then data = data1 end
      -- '0' (nearly every job's priority and delay) read without strtod.
      local prio, delay = argv[i + 4], argv[i + 5]
      prio = prio == '0' and 0 or tonumber(prio)
      delay = delay == '0' and 0 or tonumber(delay)
      local name, opts, meta = argv[i + 1], argv[i + 3], argv[i + 6]
      local state, due = 'waiting', nil
      -- Only fields that differ from what readers assume when absent (id: the key; owner: the
      -- id's head; name: the queue; priority and attempt counters: 0; options: JobOptions'
      -- defaults): every field is ~50 bytes of Redis memory once the payload makes the hash a
      -- hashtable. records.py lists the fields of each state.
      if delay <= 0 and prio == 0 and name == queue then
        -- The usual job, written with a fixed argument list (no table built and unpacked);
        -- fields in the order the general case below writes them.
        local score = fair_score(q, id, prio)
        redis.call('ZADD', keys[ko + 1], score, id)
        index_move(q, id, nil, 'wait', score)
        if meta ~= '' then
          redis.call('HSET', key, 'queue', queue, 'data', data, 'opts', opts,
            'created_at', created_at, 'meta', meta, 'state', state)
        else
          redis.call('HSET', key, 'queue', queue, 'data', data, 'opts', opts,
            'created_at', created_at, 'state', state)
        end
      else
        local f = {'queue', queue, 'data', data, 'opts', opts, 'created_at', created_at}
        if name ~= queue then f[#f + 1] = 'name'; f[#f + 1] = name end
        if prio ~= 0 then f[#f + 1] = 'priority'; f[#f + 1] = argv[i + 4] end
        if meta ~= '' then f[#f + 1] = 'meta'; f[#f + 1] = meta end
        if delay > 0 then
          state = 'delayed'
          due = num(due_at(now, delay))
          redis.call('ZADD', keys[ko + 2], due, id)
          -- ord: add order, so jobs due in the same millisecond are promoted in the order added.
          for _, v in ipairs({'delay_until', due, 'ord', redis.call('INCR', keys[ko + 3])}) do
            f[#f + 1] = v
          end
          index_move(q, id, nil, 'delayed', due)
          f[#f + 1] = 'hist'; f[#f + 1] = 'd:0:' .. num(delay)
        else
          local score = fair_score(q, id, prio)
          redis.call('ZADD', keys[ko + 1], score, id)
          index_move(q, id, nil, 'wait', score)
        end
        f[#f + 1] = 'state'; f[#f + 1] = state
        redis.call('HSET', key, unpack(f))
      end
      emit(q, 'added', id, 'n', name)
      if due then emit(q, 'delayed', id, 'due', due) end
      -- A repeated id within the batch returns the job just written.
      found[id] = state
      woke = true
      added = added + 1
      out[#out + 1] = {id, 1, state}
    end
  end
  if woke then
    -- Texts, not numbers: redis.call formats a number with libc's printf.
    redis.call('ZADD', keys[ko + 4], '0', '0')
    redis.call('HINCRBY', keys[ko + nk], 'added', added == 1 and '1' or num(added))
  end
  return out
end
