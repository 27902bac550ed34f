"""The job state machine in Redis: every transition is one Lua script on the job's hash.

    queued ──► started ──► finished | failed
       │           │
       └───────────┴──► cancelled

A transition only happens from the state it expects, so racing writers (a cancel against
the supervisor's own outcome, two supervisors scanning the same dead host) cannot undo each
other: the first one wins, the rest see the new state and leave it alone. Scripts that touch
only one job's keys keep to that job's hash-tag slot.

Hash fields: status, kind, created_at / started_at / finished_at (epoch seconds), host, pid,
phase / done / total / records (progress), error_code, error_message, peak_rss_mb,
result (JSON), ttl (job_ttl_seconds, so a cancel needs no config).
"""

from __future__ import annotations

import json
import time
from typing import Any

from jobs.keys import JobKeys
from jobs.notify import EVENT_ENDED, EVENT_PROGRESS, encode_event

ACTIVE = ("queued", "started")
ENDED = ("finished", "failed", "cancelled")

# KEYS: queue.  ARGV: job id, queue_max.  The length check and the push are one step, so
# concurrent submits cannot push the queue past its bound.
ENQUEUE = """
local n = redis.call('LLEN', KEYS[1])
if n >= tonumber(ARGV[2]) then return {0, n} end
redis.call('RPUSH', KEYS[1], ARGV[1])
return {1, n + 1}
"""

# KEYS: job, request.  ARGV: host, now, ttl ms.  Returns {previous status, kind, created_at}.
MARK_STARTED = """
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' then return {st or '', '', ''} end
redis.call('HSET', KEYS[1], 'status', 'started', 'host', ARGV[1], 'started_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local meta = redis.call('HMGET', KEYS[1], 'kind', 'created_at')
return {'queued', meta[1] or '', meta[2] or ''}
"""

# KEYS: job.  ARGV: channel, event JSON, then field/value pairs.  Only a started job takes
# progress; the status comes back so the child learns of a cancel for free.
PROGRESS = """
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'started' and #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return st or ''
"""

# KEYS: job.  ARGV: pid.
SET_PID = """
if redis.call('HGET', KEYS[1], 'status') == 'started' then
  redis.call('HSET', KEYS[1], 'pid', ARGV[1])
  return 1
end
return 0
"""

# KEYS: job.  ARGV: new status, now, ttl ms, channel, event JSON, fields JSON, base JSON.
# Ends a started job. A hash that vanished (Redis restarted without its data) is rebuilt from
# the supervisor's copy, so the outcome is never lost; an already ended job is left alone.
FINISH = """
local st = redis.call('HGET', KEYS[1], 'status')
if st and st ~= 'started' then return st end
if not st then
  for k, v in pairs(cjson.decode(ARGV[7])) do redis.call('HSET', KEYS[1], k, v) end
end
for k, v in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finished_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return st or ''
"""

# KEYS: job.  ARGV: now, channel, event JSON.  Returns the previous status.
CANCEL = """
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'queued' or st == 'started' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1])
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '3600')
  redis.call('PEXPIRE', KEYS[1], math.floor(ttl * 1000))
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return st or ''
"""

# KEYS: job, running list of the dead host, queue.  ARGV: job id, now, ttl ms, channel,
# event JSON, message.  A started job fails JOB_ORPHANED; one that was taken but never
# started goes back to the head of the queue (only if this caller removed it, so two
# scanners can't requeue it twice).
ORPHAN = """
local st = redis.call('HGET', KEYS[1], 'status')
local removed = redis.call('LREM', KEYS[2], 0, ARGV[1])
if st == 'started' then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[2],
             'error_code', 'JOB_ORPHANED', 'error_message', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return 'orphaned'
elseif st == 'queued' then
  if removed > 0 then redis.call('LPUSH', KEYS[3], ARGV[1]) return 'requeued' end
  return 'queued'
end
return st or ''
"""

# KEYS: heartbeat key, hosts set.  ARGV: token, ttl ms, host, hosts-set ttl ms.  Claims (or
# refreshes) the host id for this supervisor; another live supervisor with the same host id keeps
# it. The hosts set lives as long as anything a host of it could have left behind, and no longer.
HEARTBEAT = """
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""

# KEYS: heartbeat key.  ARGV: token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: hosts set, heartbeat key, running list.  ARGV: host.  Forget a dead host with nothing left.
FORGET_HOST = """
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  return redis.call('SREM', KEYS[1], ARGV[1])
end
return 0
"""


def s(value: Any) -> str:
    """Redis replies come back as bytes or str depending on decode_responses: normalise."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def now() -> float:
    return time.time()


def ended_event(status: str, **fields: Any) -> str:
    return encode_event(EVENT_ENDED, status=status, **fields)


def progress_event(**fields: Any) -> str:
    return encode_event(EVENT_PROGRESS, **fields)


def queued_fields(kind: str, created_at: float, ttl: float) -> dict[str, str]:
    return {"status": "queued", "kind": kind, "created_at": repr(created_at), "ttl": repr(float(ttl))}


def finish_args(
    keys: JobKeys, status: str, fields: dict[str, Any], base: dict[str, Any], ttl: float
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of FINISH."""
    t = now()
    event_fields = {}
    if fields.get("error_code"):
        event_fields["error_code"] = fields["error_code"]
    return [keys.job], [
        status,
        repr(t),
        str(ms(ttl)),
        keys.notify,
        ended_event(status, **event_fields),
        json.dumps({k: str(v) for k, v in fields.items() if v is not None}),
        json.dumps({k: str(v) for k, v in base.items() if v is not None}),
    ]


def expire_job_keys(client: Any, keys: JobKeys, ttl: float) -> None:
    """Give every key of an ended job the same TTL (sync client)."""
    members = client.smembers(keys.keyset)
    pipe = client.pipeline(transaction=False)
    for member in members:
        pipe.pexpire(s(member), ms(ttl))
    pipe.pexpire(keys.keyset, ms(ttl))
    pipe.pexpire(keys.request, ms(ttl))
    pipe.pexpire(keys.job, ms(ttl))
    pipe.execute()


def delete_job_data(client: Any, keys: JobKeys) -> int:
    """Delete everything of a job but its hash (a cancelled job keeps only its status)."""
    members = [s(m) for m in client.smembers(keys.keyset)]
    return client.delete(*members, keys.keyset, keys.request)
