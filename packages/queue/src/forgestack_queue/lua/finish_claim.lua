-- Finish and fetch next (BullMQ's moveToFinished with fetchNext): records a batch of outcomes and
-- claims the jobs that take the freed slots, in one atomic call, so a worker's slot gets its next
-- job in the round trip that records the last one instead of a second round trip after it.
-- Composed at load time (scripts.py): finish.lua and claim.lua, each wrapped unchanged as a
-- function of (KEYS, ARGV), stand before this driver. The outcomes are recorded first, so the
-- claim sees the slots (and a queue's concurrency cap) they freed.
-- KEYS: claim.lua's. ARGV: finish.lua's 4 arguments, then claim.lua's.
-- Returns {finish.lua's reply, claim.lua's reply}.
local claim_argv = {}
for i = 5, #ARGV do claim_argv[i - 4] = ARGV[i] end
local kept = finish_script({}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4]})
return {kept, claim_script(KEYS, claim_argv)}
