-- Adds jobs and, only when at least one of them is new (not an idempotent repeat of its custom
-- id), their follower: another job, in any queue of this Redis (the API's audit event of the add),
-- in one atomic call. All are written or none: nothing is written before all are known to be
-- writable.
-- _add.lua's add_jobs stands before this driver at load time (scripts.py) and writes each of the
-- two batches from its range of KEYS and ARGV.
-- KEYS: add_jobs's for the jobs, then add_jobs's for the follower.
-- ARGV: how many of KEYS and of ARGV are the jobs', the count slot ('' for none), then add_jobs's
--   ARGV for the jobs, then for the follower (one job).
-- The count slot is a text that occurs exactly once in the follower's data (followed.py makes
-- sure): it is replaced by how many of the jobs were new, which only this call knows (a bulk
-- add's event counts the jobs it created).
-- Returns {the jobs' add_jobs reply, the follower's (nil when no job was new)}, or
-- {nil, {'clash', id, its queue}} when a follower's id is another queue's (nothing written).
local nk, na, slot = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local fo = 3 + na
-- add_jobs checks its own ids before it writes; the follower's are checked here, before the jobs
-- are written, so a follower that cannot be added leaves no job behind.
local fp, fqueue = ARGV[fo + 1], ARGV[fo + 3]
for i = fo + 4, #ARGV, 7 do
  local id = ARGV[i]
  local typ = 'none'
  if redis.call('EXISTS', fp .. id) == 1 then typ = redis.call('TYPE', fp .. id)['ok'] end
  if typ ~= 'none' then
    local owner = false
    if typ == 'hash' then owner = redis.call('HGET', fp .. id, 'queue') end
    if owner ~= fqueue then return {false, {'clash', id, owner or ''}} end
  end
end
local added = add_jobs(KEYS, 0, nk, ARGV, 3, na)
if added[1] == 'clash' then return {added, false} end
local created = 0
for _, row in ipairs(added) do created = created + row[2] end
if created == 0 then return {added, false} end
local data
if slot ~= '' then
  -- The follower's data is its first job's third argument (add_jobs's groups of 7 after 3 heads).
  data = ARGV[fo + 6]
  local at = string.find(data, slot, 1, true)
  data = string.sub(data, 1, at - 1) .. created .. string.sub(data, at + #slot)
end
return {added, add_jobs(KEYS, nk, #KEYS - nk, ARGV, fo, #ARGV - fo, data)}
