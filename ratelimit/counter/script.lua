-- Tollgate GCRA: take one request from every limit of KEYS atomically.
-- ARGV holds, per key, the emission interval T and the burst tolerance tau,
-- in microseconds. Time comes from the Redis server, so replicas with
-- skewed clocks agree. Returns {allowed, remaining1, reset1, retry1, ...}
-- with durations in microseconds; nothing is written unless all admit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats = {}
local allowed = 1
for i = 1, n do
  local tau = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  if tat - now > tau then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local T = tonumber(ARGV[2 * i - 1])
  local tau = tonumber(ARGV[2 * i])
  local tat = tats[i]
  local remaining, reset, retry = 0, tat - now, 0
  if allowed == 1 then
    local nxt = tat + T
    redis.call('SET', KEYS[i], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
    remaining = math.floor((now + tau - tat) / T)
    reset = nxt - now
  elseif tat - now > tau then
    retry = tat - now - tau
  else
    remaining = math.floor((now + tau - tat) / T) + 1
  end
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
end
return out
