-- Adds a job and, only when it is new (not an idempotent repeat of its custom id), its follower:
-- another job, in any queue of this Redis (the API's audit event of the add), in one atomic call.
-- Both are written or neither: nothing is written before both are known to be writable.
-- Composed at load time (scripts.py): add.lua, wrapped unchanged as a function of (KEYS, ARGV),
-- stands before this driver and writes each of the two.
-- KEYS: add.lua's for the job, then add.lua's for the follower.
-- ARGV: how many of KEYS and of ARGV are the job's, then add.lua's ARGV for the job, then for the
--   follower.
-- Returns {the job's add.lua reply, the follower's (nil when the job existed)}, or
-- {nil, {'clash', id, its queue}} when a follower's id is another queue's (nothing written).
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local job_keys, job_argv, follower_keys, follower_argv = {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= nk then job_keys[i] = KEYS[i] else follower_keys[i - nk] = KEYS[i] end
end
for i = 3, #ARGV do
  if i - 2 <= na then job_argv[i - 2] = ARGV[i] else follower_argv[i - 2 - na] = ARGV[i] end
end
-- add.lua checks its own ids before it writes; the follower's are checked here, before the job is
-- written, so a follower that cannot be added leaves no job behind.
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
if added[1] == 'clash' or added[1][2] == 0 then return {added, false} end
return {added, add_script(follower_keys, follower_argv)}
