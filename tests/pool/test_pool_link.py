"""The supervisor's outage policy (jobs.link.RedisLink) against a Redis that can be switched off.

The real outage (a redis-server killed and restarted under a running job) is in
test_pool_resilience.py; here each rule is checked on its own, without a process or a server.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from jobs.link import BACKOFF_CAP, BACKOFF_START, Offline, RedisLink
from jobs.plan import Plan, cmd


class SwitchableRedis:
    """Enough of redis.Redis for plans of plain commands: GET / SET / PING, failing while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.data: dict[str, Any] = {}
        self.calls: list[str] = []

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise redis.ConnectionError("Connection refused")

    def ping(self) -> bool:
        self._check("ping")
        return True

    def set(self, key: str, value: Any) -> bool:
        self._check("set")
        self.data[key] = value
        return True

    def get(self, key: str) -> Any:
        self._check("get")
        return self.data.get(key)

    def close(self) -> None:
        pass


def _set(key: str, value: str) -> Plan[bool]:
    return (yield cmd("set", key, value))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr("jobs.link.time.monotonic", lambda: now[0])
    return now


@pytest.fixture
def server() -> SwitchableRedis:
    return SwitchableRedis()


@pytest.fixture
def link(server: SwitchableRedis) -> RedisLink:
    return RedisLink(server, lambda: (yield cmd("ping")), "h1", running=lambda: 2)  # type: ignore[arg-type]


def test_an_outage_is_logged_once_and_calls_fail_fast(link, server, clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobs")
    assert link.run(_set("a", "1")) is True and link.ready
    server.down = True
    with pytest.raises(Offline):
        link.run(_set("b", "2"))
    calls = len(server.calls)
    for _ in range(5):  # known down: no call is even tried, so the loop never waits on a socket
        with pytest.raises(Offline):
            link.run(_set("c", "3"))
    assert len(server.calls) == calls and not link.ok and not link.ready
    assert caplog.text.count("event=redis_lost") == 1
    assert "running=2" in caplog.text and "ConnectionError" in caplog.text


def test_probes_back_off_then_restore(link, server, clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobs")
    server.down = True
    with pytest.raises(Offline):
        link.run(_set("a", "1"))
    pings = []
    delays = []
    for _ in range(6):
        assert link.upkeep() is False  # not due yet: no probe
        before = len(server.calls)
        waited = 0.0
        while len(server.calls) == before:
            clock[0] += 0.0625  # exact in binary: the sums below are exact too
            waited += 0.0625
            link.upkeep()
        pings.append(server.calls[-1])
        delays.append(waited)
    assert set(pings) == {"ping"}
    assert delays == [BACKOFF_START, 0.5, 1.0, 2.0, BACKOFF_CAP, BACKOFF_CAP]  # doubling, capped
    server.down = False
    clock[0] += BACKOFF_CAP
    assert link.upkeep() is True and link.ready
    assert caplog.text.count("event=redis_lost") == 1 and caplog.text.count("event=redis_restored") == 1
    assert link.run(_set("b", "2")) is True


def test_outcomes_are_kept_in_order_and_written_when_redis_is_back(link, server, clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobs")
    server.down = True
    for n in range(3):
        link.write(lambda n=n: _set(f"outcome:{n}", str(n)), job_id=f"j{n}")
    assert link.unwritten == 3 and caplog.text.count("event=outcome_deferred") == 3
    server.down = False
    link.write(lambda: _set("outcome:3", "3"), job_id="j3")  # owed ones first: this one waits its turn
    assert link.unwritten == 4 and "outcome:3" not in server.data
    clock[0] += BACKOFF_CAP
    assert link.upkeep() is True
    assert link.unwritten == 0 and link.ready
    assert [k for k in server.data] == ["outcome:0", "outcome:1", "outcome:2", "outcome:3"]
    assert caplog.text.count("event=outcome_written_late") == 4


def test_a_write_cut_off_midway_is_written_again_whole(link, server, clock) -> None:
    attempts: list[int] = []

    def two_steps() -> Plan[None]:
        attempts.append(1)
        yield cmd("set", "first", str(len(attempts)))
        if len(attempts) == 1:
            server.down = True  # Redis goes away between the two steps of one outcome
        yield cmd("set", "second", str(len(attempts)))

    link.write(two_steps)
    assert link.unwritten == 1 and server.data == {"first": "1"}
    server.down = False
    clock[0] += BACKOFF_CAP
    link.upkeep()
    # The plan is built anew when it is written, so every step runs again, with fresh timestamps.
    assert link.unwritten == 0 and server.data == {"first": "2", "second": "2"}
