"""The SIP guard: flood bans, trusted networks, bounded tables, REGISTER lockout, log limiting."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from appliance.clock import VirtualClock
from appliance.errors import ConfigError
from appliance.sip.guard import MAX_USERNAME_KEY, GuardLimits, LogLimiter, RegisterLockout, SourceGuard

ATTACKER = "198.51.100.7"
PHONE = "192.0.2.10"


def _clock() -> VirtualClock:
    return VirtualClock(start=1000.0)  # whole numbers and binary fractions keep the arithmetic exact


def _later(clock: VirtualClock, seconds: float) -> None:
    clock.jump_to(clock.time() + seconds)


def _guard(**limits: object) -> tuple[SourceGuard, VirtualClock]:
    clock = _clock()
    return SourceGuard(GuardLimits(**limits), clock), clock  # type: ignore[arg-type]


def _burst(guard: SourceGuard, ip: str, count: int) -> list[bool]:
    return [guard.admit(ip, is_request=True) for _ in range(count)]


# Flood limit and bans


def test_sixteen_requests_admitted_seventeenth_bans(caplog: pytest.LogCaptureFixture) -> None:
    guard, clock = _guard()
    with caplog.at_level(logging.WARNING, logger="appliance.sip.guard"):
        for _ in range(16):
            assert guard.admit(ATTACKER, is_request=True)
            _later(clock, 0.0625)  # 16 requests within 1 s
        assert not guard.banned(ATTACKER)
        assert not guard.admit(ATTACKER, is_request=True)
    assert guard.banned(ATTACKER)
    assert guard.bans() == [(ATTACKER, 300.0)]
    [record] = caplog.records
    assert record.getMessage() == f"banning {ATTACKER} for 300 s: 17 requests in 1 s (16 per 2 s allowed)"


def test_ban_drops_everything_for_exactly_ban_seconds_then_admits() -> None:
    guard, clock = _guard()
    assert _burst(guard, ATTACKER, 17)[-1] is False
    _later(clock, 299.875)
    assert not guard.admit(ATTACKER, is_request=True)
    assert not guard.admit(ATTACKER, is_request=False)  # a banned source is ignored entirely
    assert guard.bans() == [(ATTACKER, 0.125)]
    _later(clock, 0.125)
    assert not guard.banned(ATTACKER)
    assert guard.bans() == []
    # Counting starts afresh: the requests made during the ban did not count.
    assert _burst(guard, ATTACKER, 16) == [True] * 16
    assert not guard.admit(ATTACKER, is_request=True)


def test_window_is_sliding_not_fixed() -> None:
    guard, clock = _guard()
    # 8 requests late in one 2 s span and 9 early in the next: a fixed-window counter would let all through.
    _later(clock, 1.5)
    assert _burst(guard, ATTACKER, 8) == [True] * 8
    _later(clock, 0.75)
    assert _burst(guard, ATTACKER, 8) == [True] * 8
    assert not guard.admit(ATTACKER, is_request=True)


def test_request_exactly_one_window_after_the_oldest_is_admitted() -> None:
    guard, clock = _guard()
    assert _burst(guard, ATTACKER, 16) == [True] * 16
    _later(clock, 2.0)
    assert guard.admit(ATTACKER, is_request=True)


def test_spread_out_traffic_never_bans() -> None:
    guard, clock = _guard()
    for _ in range(10_000):
        assert guard.admit(PHONE, is_request=True)
        _later(clock, 0.125)  # 8 per second: exactly 16 per 2 s, forever
    # A phone's registration and call: a handful of requests at once, then quiet.
    _later(clock, 2.0)
    for _ in range(20):
        assert _burst(guard, PHONE, 6) == [True] * 6
        _later(clock, 1.0)
    assert guard.bans() == []


def test_responses_do_not_count() -> None:
    guard, _ = _guard()
    assert all(guard.admit(ATTACKER, is_request=False) for _ in range(1000))
    assert guard.tracked == 0
    assert _burst(guard, ATTACKER, 16) == [True] * 16


@pytest.mark.parametrize(
    ("network", "ip"),
    [
        ("203.0.113.0/24", "203.0.113.5"),
        ("2001:db8:1::/48", "2001:db8:1::5060"),
        ("203.0.113.0/24", "::ffff:203.0.113.9"),  # an IPv4 peer on a dual-stack socket
    ],
)
def test_trusted_networks_never_banned(network: str, ip: str) -> None:
    guard, clock = _guard(trusted=[ipaddress.ip_network(network)])
    for _ in range(50):
        assert _burst(guard, ip, 100) == [True] * 100
        _later(clock, 0.5)
    assert not guard.banned(ip)
    assert guard.bans() == []
    # An untrusted neighbour of the same version is still banned.
    outsider = "203.0.114.5" if "." in ip else "2001:db8:2::5060"
    assert _burst(guard, outsider, 17)[-1] is False


def test_a_banned_source_does_not_affect_others() -> None:
    guard, _ = _guard()
    _burst(guard, ATTACKER, 17)
    assert guard.banned(ATTACKER)
    assert _burst(guard, PHONE, 16) == [True] * 16
    assert guard.admit("198.51.100.8", is_request=True)  # the neighbouring address too


def test_unban() -> None:
    guard, _ = _guard()
    _burst(guard, ATTACKER, 17)
    assert guard.unban(ATTACKER)
    assert not guard.unban(ATTACKER)
    assert guard.admit(ATTACKER, is_request=True)


def test_configurable_numbers_honoured() -> None:
    guard, clock = _guard(requests_per_window=3, window_seconds=10.0, ban_seconds=60.0)
    assert _burst(guard, ATTACKER, 3) == [True] * 3
    _later(clock, 9.5)
    assert not guard.admit(ATTACKER, is_request=True)
    assert guard.bans() == [(ATTACKER, 60.0)]
    _later(clock, 60.0)
    assert guard.admit(ATTACKER, is_request=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests_per_window", 0), ("max_bans", -1), ("window_seconds", 0.0), ("ban_seconds", float("inf"))],
)
def test_invalid_limits_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        GuardLimits(**{field: value})  # type: ignore[arg-type]


def test_trusted_list_is_frozen_into_a_tuple() -> None:
    networks = [ipaddress.ip_network("10.0.0.0/8")]
    limits = GuardLimits(trusted=networks)
    networks.clear()
    assert limits.trusted == (ipaddress.ip_network("10.0.0.0/8"),)


# Bounded memory under spoofed floods


def _spoofed(count: int) -> list[str]:
    return [str(ipaddress.IPv4Address(0x0A000000 + n)) for n in range(count)]


def test_tracked_sources_capped_and_bans_survive_a_spoofed_flood() -> None:
    guard, _ = _guard()
    cap = GuardLimits().max_tracked_sources
    _burst(guard, ATTACKER, 17)
    for n, ip in enumerate(_spoofed(100_000)):
        assert guard.admit(ip, is_request=True)
        if n % 1000 == 0:
            assert guard.tracked <= cap
    assert guard.tracked == cap
    assert guard.banned(ATTACKER)  # new sources never displace a ban


def test_least_recently_seen_source_is_evicted_first() -> None:
    guard, _ = _guard(max_tracked_sources=2)
    assert _burst(guard, PHONE, 16) == [True] * 16
    guard.admit("192.0.2.11", is_request=True)
    guard.admit(PHONE, is_request=False)  # a response does not refresh a source: it is not counted
    guard.admit("192.0.2.11", is_request=True)
    guard.admit("192.0.2.12", is_request=True)  # evicts PHONE, the least recently seen
    assert _burst(guard, PHONE, 16) == [True] * 16  # its count started afresh


def test_bans_capped_oldest_ban_lifted_first(caplog: pytest.LogCaptureFixture) -> None:
    guard, clock = _guard(max_bans=100, log_lines_per_interval=10)
    _burst(guard, ATTACKER, 17)
    _later(clock, 1.0)
    with caplog.at_level(logging.WARNING, logger="appliance.sip.guard"):
        for ip in _spoofed(100):
            _burst(guard, ip, 17)
    bans = guard.bans()
    assert len(bans) == 100
    assert not guard.banned(ATTACKER)  # the price: 100 * 17 spoofed requests, after which it is banned again
    assert all(guard.banned(ip) for ip in _spoofed(100))
    # The journal got the global budget's worth of ban lines plus one saying the rest are suppressed.
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 11
    assert "log_lines_per_interval" in messages[-1]


# REGISTER lockout


def _lockout(**limits: object) -> tuple[RegisterLockout, VirtualClock]:
    clock = _clock()
    guard_limits = GuardLimits(**limits)  # type: ignore[arg-type]
    return RegisterLockout(guard_limits, clock, LogLimiter(guard_limits, clock)), clock


def test_lockout_after_five_failures_for_ten_minutes(caplog: pytest.LogCaptureFixture) -> None:
    lockout, clock = _lockout()
    with caplog.at_level(logging.WARNING, logger="appliance.sip.guard"):
        for _ in range(4):
            lockout.failed("alice", ATTACKER)
            assert not lockout.locked("alice")
        lockout.failed("alice", ATTACKER)
    assert lockout.locked("alice")
    assert not lockout.locked("bob")
    assert lockout.locks() == [("alice", 600.0)]
    [record] = caplog.records
    assert record.getMessage() == f"locking account 'alice' for 600 s: 5 failed REGISTERs, the last from {ATTACKER}"
    _later(clock, 599.5)
    lockout.failed("alice", ATTACKER)  # failures while locked do not extend the lock
    assert lockout.locked("alice")
    _later(clock, 0.5)
    assert not lockout.locked("alice")
    assert lockout.locks() == []
    lockout.failed("alice", ATTACKER)
    assert not lockout.locked("alice")  # the count started afresh


def test_success_resets_the_failure_count() -> None:
    lockout, _ = _lockout()
    for _ in range(4):
        lockout.failed("alice", PHONE)
    lockout.succeeded("alice")
    for _ in range(4):
        lockout.failed("alice", PHONE)
    assert not lockout.locked("alice")
    lockout.failed("alice", PHONE)
    assert lockout.locked("alice")


def test_lockout_is_per_username_regardless_of_source() -> None:
    lockout, _ = _lockout()
    for n in range(5):
        lockout.failed("alice", f"198.51.100.{n}")
    assert lockout.locked("alice")


def test_old_failures_are_forgotten() -> None:
    lockout, clock = _lockout()
    for _ in range(4):
        lockout.failed("alice", PHONE)
        _later(clock, 599.0)  # a slow guesser still gets locked
    lockout.failed("alice", PHONE)
    assert lockout.locked("alice")
    lockout.unlock("alice")
    for _ in range(10):
        lockout.failed("bob", PHONE)
        _later(clock, 600.0)  # one typo per lockout period never adds up
    assert not lockout.locked("bob")


def test_lockout_numbers_configurable_and_unlock() -> None:
    lockout, _ = _lockout(register_failures=2, lockout_seconds=30.0)
    lockout.failed("alice", PHONE)
    lockout.failed("alice", PHONE)
    assert lockout.locks() == [("alice", 30.0)]
    assert lockout.unlock("alice")
    assert not lockout.unlock("alice")
    lockout.failed("alice", PHONE)
    assert not lockout.locked("alice")  # unlock also forgot the failures


def test_lockout_tables_bounded_and_locks_survive_a_name_spray() -> None:
    lockout, _ = _lockout(max_tracked_accounts=100)
    for _ in range(5):
        lockout.failed("alice", ATTACKER)
    for n in range(10_000):
        lockout.failed(f"user{n}", ATTACKER)  # single failures never displace a lock
    assert lockout.locked("alice")
    assert len(lockout._failures) == 100
    for n in range(100):
        for _ in range(5):
            lockout.failed(f"spray{n}", ATTACKER)
    assert not lockout.locked("alice")  # 500 more failures lift the oldest lock
    assert len(lockout.locks()) == 100


def test_long_usernames_are_truncated_keys() -> None:
    lockout, _ = _lockout()
    for n in range(5):
        lockout.failed("x" * MAX_USERNAME_KEY + str(n) * 10_000, ATTACKER)
    assert lockout.locked("x" * MAX_USERNAME_KEY + "y")
    [(name, _)] = lockout.locks()
    assert len(name) == MAX_USERNAME_KEY


def test_guard_offers_the_lockout() -> None:
    guard, _ = _guard(register_failures=1)
    guard.accounts.failed("alice", ATTACKER)
    assert guard.accounts.locked("alice")


# Log limiting


def test_log_once_per_source_and_kind_per_minute_with_suppressed_count() -> None:
    clock = _clock()
    limiter = LogLimiter(GuardLimits(), clock)
    assert limiter.should_log(ATTACKER, "malformed")
    assert limiter.note(ATTACKER, "malformed") == ""
    for _ in range(12):
        assert not limiter.should_log(ATTACKER, "malformed")
    assert limiter.should_log(ATTACKER, "oversized")  # another kind
    assert limiter.should_log(PHONE, "malformed")  # another source
    _later(clock, 59.5)
    assert not limiter.should_log(ATTACKER, "malformed")
    _later(clock, 0.5)
    assert limiter.should_log(ATTACKER, "malformed")
    assert limiter.note(ATTACKER, "malformed") == " (13 more suppressed)"
    assert not limiter.should_log(ATTACKER, "malformed")
    assert limiter.note(ATTACKER, "malformed") == " (13 more suppressed)"  # still the last line's note
    _later(clock, 60.0)
    assert limiter.should_log(ATTACKER, "malformed")
    assert limiter.note(ATTACKER, "malformed") == " (1 more suppressed)"


def test_log_global_budget_bounds_a_spoofed_flood(caplog: pytest.LogCaptureFixture) -> None:
    clock = _clock()
    limits = GuardLimits(log_lines_per_interval=5, log_interval_seconds=10.0, max_tracked_sources=50)
    limiter = LogLimiter(limits, clock)
    with caplog.at_level(logging.WARNING, logger="appliance.sip.guard"):
        allowed = [limiter.should_log(ip, "malformed") for ip in _spoofed(1000)]
    assert allowed == [True] * 5 + [False] * 995
    assert len(caplog.records) == 1  # "suppressing the rest until the interval ends"
    assert len(limiter._entries) <= 50
    _later(clock, 10.0)
    assert limiter.should_log(PHONE, "malformed")
    assert limiter.note(PHONE, "malformed") == " (995 lines about other sources suppressed)"


def test_log_interval_configurable() -> None:
    clock = _clock()
    limiter = LogLimiter(GuardLimits(log_interval_seconds=5.0), clock)
    assert limiter.should_log(ATTACKER, "scan")
    _later(clock, 4.5)
    assert not limiter.should_log(ATTACKER, "scan")
    _later(clock, 0.5)
    assert limiter.should_log(ATTACKER, "scan")


# Cost


def test_many_admits_stay_cheap() -> None:
    # Not a timing assertion: 200k admits over many sources, bans and evictions must finish quickly.
    guard, clock = _guard(max_tracked_sources=5000, max_bans=500)
    sources = _spoofed(20_000)
    admitted = 0
    for n in range(200_000):
        admitted += guard.admit(sources[(n * 7919) % len(sources)] if n % 3 else ATTACKER, is_request=n % 5 != 0)
        if n % 64 == 0:
            _later(clock, 0.001)
    assert guard.tracked <= 5000
    assert len(guard.bans()) <= 500
    assert guard.banned(ATTACKER)
    assert admitted > 100_000
