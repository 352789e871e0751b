-- Adds jobs and, only when at least one of them is new (not an idempotent repeat of its custom
-- id), their follower: another job, in any queue of this Redis (the API's audit event of the add),
-- in one atomic call. All are written or none: nothing is written before all are known to be
-- writable.
-- Composed at load time (scripts.py): add.lua, wrapped unchanged as a function of (KEYS, ARGV),
-- stands before this driver and writes each of the two batches.
-- KEYS: add.lua's for the jobs, then add.lua's for the follower.
-- ARGV: how many of KEYS and of ARGV are the jobs', the count slot ('' for none), then add.lua's
--   ARGV for the jobs, then for the follower (one job).
-- The count slot is a text that occurs exactly once in the follower's data (followed.py makes
-- sure): it is replaced by how many of the jobs were new, which only this call knows (a bulk
-- add's event counts the jobs it created).
-- Returns {the jobs' add.lua reply, the follower's (nil when no job was new)}, or
-- {nil, {'clash', id, its queue}} when a follower's id is another queue's (nothing written).
local nk, na, slot = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local job_keys, job_argv, follower_keys, follower_argv = {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= nk then job_keys[i] = KEYS[i] else follower_keys[i - nk] = KEYS[i] end
end
for i = 4, #ARGV do
  if i - 3 <= na then job_argv[i - 3] = ARGV[i] else follower_argv[i - 3 - na] = ARGV[i] end
end
-- add.lua checks its own ids before it writes; the follower's are checked here, before the jobs
-- are written, so a follower that cannot be added leaves no job behind.
local fp, fqueue = follower_argv[1], follower_argv[3]
for i = 4, #follower_argv, 7 do
  local id = follower_argv[i]
  local typ = redis.call('TYPE', fp .. id)['ok']
  if typ ~= 'none' then
    local owner = false
    if typ == 'hash' then owner = redis.call('HGET', fp .. id, 'queue') end
    if owner ~= fqueue then return {false, {'clash', id, owner or ''}} end
  end
end
local added = add_script(job_keys, job_argv)
if added[1] == 'clash' then return {added, false} end
local created = 0
for _, row in ipairs(added) do created = created + row[2] end
if created == 0 then return {added, false} end
if slot ~= '' then
  -- The follower's data is its first job's third argument (add.lua's groups of 7 from ARGV[4]).
  local data = follower_argv[6]
  local at = string.find(data, slot, 1, true)
  follower_argv[6] = string.sub(data, 1, at - 1) .. created .. string.sub(data, at + #slot)
end
return {added, add_script(follower_keys, follower_argv)}
