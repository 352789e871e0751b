-- One bounded batch of `clean`: removes jobs of one state older than a cut-off (finished jobs by
-- finished_at, waiting and delayed jobs by created_at), with their owner index entries. Python
-- calls it until done, so any number of jobs is cleaned without one long script.
-- KEYS: the set to scan (the queue's state set, or an owner's index of it)
-- ARGV: job key prefix, queue key prefix, set part (wait|delayed|completed|failed),
--   older_than_ms, most removals, scan start rank, scan window (waiting/delayed only)
-- Returns {removed, next scan start rank (-1 when nothing is left to scan)}.
local jp, q, part = ARGV[1], ARGV[2], ARGV[3]
local most, start, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now, t = server_now()
local cutoff = now - tonumber(ARGV[4])
local removed, next_start = {}, -1
if part == 'completed' or part == 'failed' then
  removed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', num(cutoff), 'LIMIT', 0, most)
  if #removed == most then next_start = 0 end
else
  local ids = redis.call('ZRANGE', KEYS[1], start, start + window - 1)
  local scanned = 0
  for _, id in ipairs(ids) do
    if #removed >= most then break end
    scanned = scanned + 1
    -- pcall: a record of another type is not cleaned here (a worker's claim quarantines it).
    local ok, created = pcall(redis.call, 'HGET', jp .. id, 'created_at')
    if ok and (tonumber(created) or 0) <= cutoff then removed[#removed + 1] = id end
  end
  if #removed >= most or #ids == window then next_start = start + scanned - #removed end
end
delete_jobs(jp, q, part, removed)
return {#removed, next_start}
