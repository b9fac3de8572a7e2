-- GCRA over every limit of one request, all or nothing (see doc.go).
--
-- KEYS[i]      the TAT key of limit i; all keys share one hash slot.
-- ARGV[2i-1]   T, the emission interval of limit i, in microseconds.
-- ARGV[2i]     tau, its burst tolerance T * (Burst - 1), in microseconds.
--
-- A TAT is stored as integer microseconds of this server's clock, with a
-- PX expiry at the moment the bucket is full again: an expired key and a
-- TAT in the past mean the same thing.
--
-- Reply: {allowed (1 or 0), now (us), then per limit: remaining,
-- reset_after (us), retry_after (us)}, describing the state after the call.

if redis.replicate_commands then
  redis.replicate_commands() -- Redis < 5: replicate the SETs, not TIME
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local n = #KEYS
local tats = {}
local allowed = 1

-- Read every limit first; any limit that would reject vetoes the call.
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  tats[i] = math.max(tat, now)
  if tats[i] - now > tonumber(ARGV[2 * i]) then
    allowed = 0
  end
end

-- Then charge every limit, or none.
if allowed == 1 then
  for i = 1, n do
    tats[i] = tats[i] + tonumber(ARGV[2 * i - 1])
    redis.call('SET', KEYS[i], string.format('%d', tats[i]),
      'PX', string.format('%d', math.ceil((tats[i] - now) / 1000)))
  end
end

local reply = {allowed, now}
for i = 1, n do
  local t = tonumber(ARGV[2 * i - 1])
  local tau = tonumber(ARGV[2 * i])
  local d = tats[i] - now
  reply[#reply + 1] = math.max(0, math.floor((tau + t - d) / t))
  reply[#reply + 1] = d
  reply[#reply + 1] = math.max(0, d - tau)
end
return reply
