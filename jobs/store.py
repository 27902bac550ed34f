"""JobStore: every Redis key, Lua script and command of the pool, as plans (see jobs.plan).

The callers (jobs.client), the supervisor and the child run these plans; none of them builds a
key or sends a command of its own. The store itself does no I/O, so one definition serves the
sync and the asyncio caller.

Every state transition is one Lua script on the job's hash that fires only from the state it
expects, so racing writers (a cancel against the supervisor's own outcome, two supervisors
scanning the same dead host) cannot undo each other: the first one wins, the rest see the new
state and leave it alone. Scripts that touch only one job's keys keep to its hash-tag slot.

Hash fields: status, kind, created_at / started_at / finished_at (epoch seconds), host, pid,
phase / done / total / records (progress), error_code, error_message, peak_rss_mb,
result (JSON), ttl (job_ttl_seconds, so a cancel needs no config).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

from jobs.document import job_document, pool_document
from jobs.errors import JOB_ORPHANED, QueueFull
from jobs.keys import JobKeys, PoolKeys, is_valid_job_id
from jobs.notify import EVENT_ENDED, EVENT_PROGRESS, encode_event
from jobs.outcome import Outcome
from jobs.plan import Call, Lua, Plan, Script, cmd, multi, pipeline, text
from jobs.status import ACTIVE, Status


def _lua(source: str) -> Script:
    # The scripts name statuses as $QUEUED, $STARTED…: the words come from Status, not a second copy.
    return Script(Template(source).substitute({s.name: s.value for s in Status}, JOB_ORPHANED=JOB_ORPHANED))


# KEYS: queue.  ARGV: job id, queue_max.  The length check and the push are one step, so
# concurrent submits cannot push the queue past its bound.
ENQUEUE = _lua("""
local n = redis.call('LLEN', KEYS[1])
if n >= tonumber(ARGV[2]) then return {0, n} end
redis.call('RPUSH', KEYS[1], ARGV[1])
return {1, n + 1}
""")

# KEYS: job, request.  ARGV: host, now, ttl ms.  Returns {previous status, kind, created_at}.
MARK_STARTED = _lua("""
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= '$QUEUED' then return {st or '', '', ''} end
redis.call('HSET', KEYS[1], 'status', '$STARTED', 'host', ARGV[1], 'started_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local meta = redis.call('HMGET', KEYS[1], 'kind', 'created_at')
return {'$QUEUED', meta[1] or '', meta[2] or ''}
""")

# KEYS: job.  ARGV: channel, event JSON, then field/value pairs.  Only a started job takes
# progress; the status comes back so the child learns of a cancel for free.
PROGRESS = _lua("""
local st = redis.call('HGET', KEYS[1], 'status')
if st == '$STARTED' and #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return st or ''
""")

# KEYS: job.  ARGV: pid.
SET_PID = _lua("""
if redis.call('HGET', KEYS[1], 'status') == '$STARTED' then
  redis.call('HSET', KEYS[1], 'pid', ARGV[1])
  return 1
end
return 0
""")

# KEYS: job.  ARGV: new status, now, ttl ms, channel, event JSON, fields JSON, base JSON.
# Ends a started job. A hash that vanished (Redis restarted without its data) is rebuilt from
# the supervisor's copy, so the outcome is never lost; an already ended job is left alone.
FINISH = _lua("""
local st = redis.call('HGET', KEYS[1], 'status')
if st and st ~= '$STARTED' then return st end
if not st then
  for k, v in pairs(cjson.decode(ARGV[7])) do redis.call('HSET', KEYS[1], k, v) end
end
for k, v in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finished_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return st or ''
""")

# KEYS: job.  ARGV: now, channel, event JSON.  Returns the previous status.
CANCEL = _lua("""
local st = redis.call('HGET', KEYS[1], 'status')
if st == '$QUEUED' or st == '$STARTED' then
  redis.call('HSET', KEYS[1], 'status', '$CANCELLED', 'finished_at', ARGV[1])
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '3600')
  redis.call('PEXPIRE', KEYS[1], math.floor(ttl * 1000))
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return st or ''
""")

# KEYS: job, running list of the dead host, queue.  ARGV: job id, now, ttl ms, channel,
# event JSON, message.  A started job fails JOB_ORPHANED; one that was taken but never
# started goes back to the head of the queue (only if this caller removed it, so two
# scanners can't requeue it twice).
ORPHAN = _lua("""
local st = redis.call('HGET', KEYS[1], 'status')
local removed = redis.call('LREM', KEYS[2], 0, ARGV[1])
if st == '$STARTED' then
  redis.call('HSET', KEYS[1], 'status', '$FAILED', 'finished_at', ARGV[2],
             'error_code', '$JOB_ORPHANED', 'error_message', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return 'orphaned'
elseif st == '$QUEUED' then
  if removed > 0 then redis.call('LPUSH', KEYS[3], ARGV[1]) return 'requeued' end
  return '$QUEUED'
end
return st or ''
""")

# KEYS: heartbeat key, hosts set.  ARGV: token, ttl ms, host, hosts-set ttl ms.  Claims (or
# refreshes) the host id for this supervisor; another live supervisor with the same host id keeps
# it. The hosts set lives as long as anything a host of it could have left behind, and no longer.
HEARTBEAT = _lua("""
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
""")

# KEYS: heartbeat key.  ARGV: token.
RELEASE = _lua("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")

# KEYS: hosts set, heartbeat key, running list.  ARGV: host.  Forget a dead host with nothing left.
FORGET_HOST = _lua("""
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  return redis.call('SREM', KEYS[1], ARGV[1])
end
return 0
""")


def ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _ended_event(status: Status, **fields: Any) -> str:
    return encode_event(EVENT_ENDED, status=status, **fields)


def _strings(mapping: Mapping[str, Any]) -> str:
    return json.dumps({k: str(v) for k, v in mapping.items() if v is not None})


@dataclass(frozen=True)
class StartedJob:
    """What the supervisor knows of a job it started: enough to rebuild its hash if Redis loses it."""

    job_id: str
    kind: str
    created_at: str  # as stored (epoch seconds, text); '' if the hash had none
    started_at: float
    host: str


class JobStore:
    """The pool's Redis layout under one prefix, and every operation on it as a plan."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.keys = PoolKeys(prefix)

    def job_keys(self, job_id: str) -> JobKeys:
        """The keys of one job (ValueError for a string that is not a job id)."""
        return self.keys.job(job_id)

    def channel(self, job_id: str) -> str:
        return self.keys.job(job_id).notify

    # -- the caller's side -----------------------------------------------------------------

    def submit(
        self, job_id: str, kind: str, body: str, *, job_ttl: float, queued_ttl: float, queue_max: int
    ) -> Plan[str]:
        """Store a job as queued, then push it onto the queue unless that holds queue_max already.

        The hash and request are one MULTI in the job's slot; the bounded push is a script on the
        queue, so concurrent submits never overshoot; a refused job's keys are deleted again.
        """
        keys, ttl = self.keys.job(job_id), ms(queued_ttl)
        fields = {"status": Status.QUEUED, "kind": kind, "created_at": repr(time.time()), "ttl": repr(float(job_ttl))}
        yield multi(
            cmd("hset", keys.job, mapping=fields), cmd("pexpire", keys.job, ttl), cmd("set", keys.request, body, px=ttl)
        )
        accepted, length = yield Lua(ENQUEUE, [self.keys.queue], [job_id, queue_max])
        if not int(accepted):
            yield cmd("delete", keys.job, keys.request)
            raise QueueFull(f"the job queue holds {int(length)} jobs (queue_max {queue_max})")
        return job_id

    def status(self, job_id: str) -> Plan[dict[str, Any] | None]:
        """The job's status document, or None if there is no such job (never was, or expired)."""
        raw = yield cmd("hgetall", self.keys.job(job_id).job)
        if not raw:
            return None
        position = None
        if text(raw.get(b"status", raw.get("status"))) == Status.QUEUED:
            position = yield cmd("lpos", self.keys.queue, job_id)
        return job_document(job_id, raw, None if position is None else int(position))

    def cancel(self, job_id: str) -> Plan[str]:
        """Cancel a queued or started job; returns the status it had ('' for no such job).

        A queued job leaves the queue at once; a started one's supervisor sees the status within a
        round and kills its child. Either way the data keys go and only the hash remains.
        """
        keys = self.keys.job(job_id)
        previous = yield from self._cancel_transition(keys)
        if previous == Status.QUEUED:
            yield cmd("lrem", self.keys.queue, 0, job_id)
        if previous in ACTIVE:
            yield from self._delete_data(keys)
        return previous

    def pool_state(self, host: str | None = None) -> Plan[dict[str, Any]]:
        """What the supervisors last reported: the queue length and, per host, its last round."""
        hosts = [host] if host else sorted(text(h) for h in (yield cmd("smembers", self.keys.hosts)))
        per_host = [(cmd("get", self.keys.pool_state(h)), cmd("exists", self.keys.heartbeat(h))) for h in hosts]
        replies = yield pipeline(cmd("llen", self.keys.queue), *(call for pair in per_host for call in pair))
        return pool_document(int(replies[0]), hosts, replies[1::2], replies[2::2])

    # -- the supervisor's side -------------------------------------------------------------

    def ping(self) -> Plan[Any]:
        return (yield cmd("ping"))

    def take(self, host: str, block_seconds: float | None) -> Plan[str | None]:
        """Move the next queued id onto running:{host} (atomic: one taker per job); None if none."""
        running = self.keys.running(host)
        if block_seconds is None:
            raw = yield cmd("lmove", self.keys.queue, running, "LEFT", "RIGHT")
        else:
            raw = yield cmd("blmove", self.keys.queue, running, block_seconds, "LEFT", "RIGHT")
        return None if raw is None else text(raw)

    def drop_taken(self, host: str, value: str) -> Plan[None]:
        """Remove something from running:{host} that is not a job id (garbage in the queue)."""
        yield cmd("lrem", self.keys.running(host), 0, value)

    def mark_started(
        self, host: str, job_id: str, started_ttl: float
    ) -> Plan[tuple[str, StartedJob | None]]:
        """queued → started; (previous status, the started job) — None and dropped if it wasn't queued."""
        keys, started_at = self.keys.job(job_id), time.time()
        reply = yield Lua(MARK_STARTED, [keys.job, keys.request], [host, repr(started_at), ms(started_ttl)])
        previous, kind, created_at = (text(v) for v in reply)
        if previous != Status.QUEUED:  # cancelled while queued, or expired: nothing to run
            yield cmd("lrem", self.keys.running(host), 0, job_id)
            return previous, None
        return previous, StartedJob(job_id, kind, created_at, started_at, host)

    def set_pid(self, job_id: str, pid: int) -> Plan[None]:
        yield Lua(SET_PID, [self.keys.job(job_id).job], [pid])

    def report(self, host: str, job_ids: Sequence[str], report: dict[str, Any], ttl: float) -> Plan[list[str]]:
        """One round trip: publish the host's report, read the status of each job (cancelled?)."""
        calls = [cmd("hget", self.keys.job(job_id).job, "status") for job_id in job_ids]
        replies = yield pipeline(*calls, cmd("set", self.keys.pool_state(host), json.dumps(report), px=ms(ttl)))
        return [text(status) for status in replies[:-1]]

    def record(self, job: StartedJob, outcome: Outcome, job_ttl: float) -> Plan[None]:
        """Write how a job ended, set the job TTL on all its keys, and take it off running:{host}."""
        keys = self.keys.job(job.job_id)
        if outcome.status is Status.CANCELLED:
            yield from self._cancel_transition(keys)
            yield from self._delete_data(keys)
        elif outcome.status is None:  # ended elsewhere (orphaned while we were cut off): TTLs only
            yield from self._expire_job(keys, job_ttl)
        else:
            # Data keys get the job TTL before the "ended" event goes out, so a reader woken by it sees final TTLs.
            yield from self._expire_job(keys, job_ttl)
            previous = text((yield Lua(FINISH, [keys.job], self._finish_argv(keys, job, outcome, job_ttl))))
            if previous == Status.CANCELLED:  # cancelled just as it ended: cancel wins, its data goes
                yield from self._delete_data(keys)
        yield cmd("lrem", self.keys.running(job.host), 0, job.job_id)

    def heartbeat(self, host: str, token: str, ttl: float, hosts_ttl: float) -> Plan[bool]:
        """Claim or refresh the host id for `token`; False while another live supervisor holds it."""
        keys = [self.keys.heartbeat(host), self.keys.hosts]
        return bool((yield Lua(HEARTBEAT, keys, [token, ms(ttl), host, ms(hosts_ttl)])))

    def hosts(self) -> Plan[list[str]]:
        return sorted(text(h) for h in (yield cmd("smembers", self.keys.hosts)))

    def host_alive(self, host: str) -> Plan[bool]:
        return bool((yield cmd("exists", self.keys.heartbeat(host))))

    def running_ids(self, host: str) -> Plan[list[str]]:
        return [text(i) for i in (yield cmd("lrange", self.keys.running(host), 0, -1))]

    def orphan(self, host: str, job_id: str, why: str, job_ttl: float) -> Plan[str]:
        """A job in a dead (or restarted) host's running list: 'orphaned', 'requeued', or its status."""
        running = self.keys.running(host)
        if not is_valid_job_id(job_id):
            yield cmd("lrem", running, 0, job_id)
            return "dropped"
        keys = self.keys.job(job_id)
        event = _ended_event(Status.FAILED, error_code=JOB_ORPHANED)
        argv = [job_id, repr(time.time()), ms(job_ttl), keys.notify, event, why]
        result = text((yield Lua(ORPHAN, [keys.job, running, self.keys.queue], argv)))
        if result == "orphaned":
            yield from self._expire_job(keys, job_ttl)
        return result

    def forget_host(self, host: str) -> Plan[bool]:
        """Drop a host with no heartbeat and nothing in its running list from the hosts set."""
        keys = [self.keys.hosts, self.keys.heartbeat(host), self.keys.running(host)]
        return bool((yield Lua(FORGET_HOST, keys, [host])))

    def leave(self, host: str, token: str) -> Plan[None]:
        """A clean stop: release the host id (if still ours), drop its report, and forget the host
        unless a job of it still needs a scan."""
        yield Lua(RELEASE, [self.keys.heartbeat(host)], [token])
        yield cmd("delete", self.keys.pool_state(host))
        yield from self.forget_host(host)

    # -- the child's side ------------------------------------------------------------------

    def request(self, job_id: str) -> Plan[bytes | None]:
        return (yield cmd("get", self.keys.job(job_id).request))

    def job_status(self, job_id: str) -> Plan[str]:
        return text((yield cmd("hget", self.keys.job(job_id).job, "status")))

    def progress(self, job_id: str, fields: Mapping[str, Any]) -> Plan[str]:
        """Write progress fields (only while started) and publish them; returns the job's status."""
        keys = self.keys.job(job_id)
        argv: list[Any] = [keys.notify, encode_event(EVENT_PROGRESS, **fields)]
        for name, value in fields.items():
            argv.extend((name, str(value)))
        return text((yield Lua(PROGRESS, [keys.job], argv)))

    def track_calls(self, job_id: str, keys: Iterable[str], ttl: float) -> list[Call]:
        """Register data keys in the job's keyset, so the pool expires/deletes them with the job."""
        job = self.keys.job(job_id)
        return [cmd("sadd", job.keyset, *keys), cmd("pexpire", job.keyset, ms(ttl))]

    def set_data_calls(self, job_id: str, suffix: str, value: bytes | str, ttl: float) -> tuple[str, list[Call]]:
        key = self.keys.job(job_id).data(suffix)
        return key, [cmd("set", key, value, px=ms(ttl)), *self.track_calls(job_id, [key], ttl)]

    def hset_data_calls(
        self, job_id: str, suffix: str, mapping: Mapping[str, Any], ttl: float
    ) -> tuple[str, list[Call]]:
        key = self.keys.job(job_id).data(suffix)
        calls = [cmd("hset", key, mapping=mapping), cmd("pexpire", key, ms(ttl)), *self.track_calls(job_id, [key], ttl)]
        return key, calls

    def notify_call(self, job_id: str, event: str, **fields: Any) -> Call:
        return cmd("publish", self.keys.job(job_id).notify, encode_event(event, **fields))

    # -- shared steps ----------------------------------------------------------------------

    @staticmethod
    def _finish_argv(keys: JobKeys, job: StartedJob, outcome: Outcome, job_ttl: float) -> list[Any]:
        assert outcome.status is not None
        # `base` is the supervisor's copy of the hash: FINISH rebuilds a hash Redis lost from it.
        base = {
            "kind": job.kind,
            "created_at": job.created_at,
            "started_at": repr(job.started_at),
            "host": job.host,
            "ttl": repr(float(job_ttl)),
        }
        event = _ended_event(outcome.status, **({"error_code": outcome.error_code} if outcome.error_code else {}))
        fields, base_json = _strings(outcome.fields()), _strings(base)
        return [outcome.status, repr(time.time()), ms(job_ttl), keys.notify, event, fields, base_json]

    def _cancel_transition(self, keys: JobKeys) -> Plan[str]:
        reply = yield Lua(CANCEL, [keys.job], [repr(time.time()), keys.notify, _ended_event(Status.CANCELLED)])
        return text(reply)

    def _delete_data(self, keys: JobKeys) -> Plan[None]:
        """Delete everything of a job but its hash (a cancelled job keeps only its status)."""
        members = [text(m) for m in (yield cmd("smembers", keys.keyset))]
        yield cmd("delete", *members, keys.keyset, keys.request)

    def _expire_job(self, keys: JobKeys, ttl: float) -> Plan[None]:
        """Give every key of an ended job the same TTL."""
        members = yield cmd("smembers", keys.keyset)
        expiring = [*(text(m) for m in members), keys.keyset, keys.request, keys.job]
        yield pipeline(*(cmd("pexpire", key, ms(ttl)) for key in expiring))
