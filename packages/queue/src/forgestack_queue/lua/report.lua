-- A running handler's progress or log line (Job.update_progress, Job.log): stored with the job and
-- emitted as an event, only while the attempt still holds the job (its token), so an attempt
-- whose lease lapsed cannot write over the one that replaced it.
-- KEYS: job, its log list
-- ARGV: queue key prefix, id, token, kind (progress|log), value (progress JSON or a line),
--   most log lines kept
-- Returns 1 when written, 0 when the attempt no longer holds the job.
local q, id, kind, value = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
-- pcall: a record overwritten with another type is not ours.
if redis.pcall('HGET', KEYS[1], 'token') ~= ARGV[3] then return 0 end
if kind == 'progress' then
  redis.call('HSET', KEYS[1], 'progress', value)
  emit(q, 'progress', id, 'p', value)
else
  redis.call('RPUSH', KEYS[2], value)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
  emit(q, 'log', id, 'l', value)
end
return 1
