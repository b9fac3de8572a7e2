-- Settle one participant's usage report against the limits of a bucket
-- (see account.go for the contract; memory.go runs the same math).
--
-- KEYS[2i-1]  the TAT key of limit i (the counter package's key: exact and
--             quota mode share one account), KEYS[2i] its shares hash;
--             all keys share one hash slot.
-- ARGV[1]     the participant id      ARGV[2] requests used since the last report
-- ARGV[3]     its demand (req/s)      ARGV[4] how long its share is held (us)
-- ARGV[5]     1: keep what it holds, only its share changes (a rebalancing);
--             2: release: the participant leaves every shares hash (an
--             abandoned bucket); no TAT changes; reply share and grant 0
-- ARGV[4+2i]  T of limit i (us)       ARGV[5+2i] tau of limit i (us)
--
-- A shares hash maps participant -> "share demand expires_us grant grant_at_us".
-- A participant absent from a hash (or whose entry expired) that meets
-- others there is taken to demand at least their mean: its first report
-- says one request, and the others would otherwise keep nearly all of the
-- rate until it reports again (rebalance.go).
-- Reply: per limit, remaining (integer), the share and the grant (strings).

if redis.replicate_commands then
  redis.replicate_commands()
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local me = ARGV[1]
local used = tonumber(ARGV[2])
local demand = tonumber(ARGV[3])
local hold = tonumber(ARGV[4])
local keep = ARGV[5] == '1'
local reply = {}

if ARGV[5] == '2' then
  for i = 1, #KEYS / 2 do
    local t = tonumber(ARGV[4 + 2 * i])
    local tau = tonumber(ARGV[5 + 2 * i])
    local tat = math.max(tonumber(redis.call('GET', KEYS[2 * i - 1])) or now, now)
    redis.call('HDEL', KEYS[2 * i], me)
    reply[#reply + 1] = math.max(0, math.floor((tau + t - (tat - now)) / t))
    reply[#reply + 1] = '0'
    reply[#reply + 1] = '0'
  end
  return reply
end

for i = 1, #KEYS / 2 do
  local t = tonumber(ARGV[4 + 2 * i])
  local tau = tonumber(ARGV[5 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[2 * i - 1])) or now
  tat = math.min(math.max(tat, now) + used * t, now + 2 * (tau + t))
  if tat > now then
    redis.call('SET', KEYS[2 * i - 1], string.format('%d', tat),
      'PX', string.format('%d', math.ceil((tat - now) / 1000)))
  end
  reply[#reply + 1] = math.max(0, math.floor((tau + t - (tat - now)) / t))

  local rem = reply[#reply]
  local all = redis.call('HGETALL', KEYS[2 * i])
  local odemand, others, count, held, known, mine_held = 0, 0, 1, 0, false, 0
  for j = 1, #all, 2 do
    local s, d, e, g, at = string.match(all[j + 1], '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
    if all[j] == me then
      known = s ~= nil and tonumber(e) > now
      if known then
        mine_held = tonumber(g) + tonumber(s) * math.max(0, now - tonumber(at)) / t
      end
    elseif s == nil or tonumber(e) <= now then
      redis.call('HDEL', KEYS[2 * i], all[j])
    else
      odemand = odemand + tonumber(d)
      others = others + tonumber(s)
      count = count + 1
      held = held + tonumber(g) + tonumber(s) * math.max(0, now - tonumber(at)) / t
    end
  end
  local mine = demand
  if not known and count > 1 then
    mine = math.max(demand, odemand / (count - 1))
  end
  local total = mine + odemand
  local target = 0.1 / count
  if total > 0 then
    target = target + 0.9 * mine / total
  else
    target = target + 0.9 / count
  end
  local share = math.max(0.1 / count, math.min(target, 1 - others))
  local grant = math.max(0, math.min(share * rem, rem - held))
  if keep and known then
    grant = mine_held
  end
  redis.call('HSET', KEYS[2 * i], me, string.format('%.17g %.17g %d %.17g %d', share, mine, now + hold, grant, now))
  redis.call('PEXPIRE', KEYS[2 * i], string.format('%d', math.ceil(hold / 1000)))
  reply[#reply + 1] = string.format('%.17g', share)
  reply[#reply + 1] = string.format('%.17g', grant)
end
return reply
