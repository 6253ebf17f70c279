"""The SIP stack's guard against floods, scans and password guessing; consulted before any parsing.

`SourceGuard.admit()` runs for every datagram / message, so it is O(1) and allocates nothing on the
common path beyond one small record per newly seen source. A source is an IP address, not IP:port,
because scanners rotate ports. All tables are bounded and evict least recently used entries, so a
flood from spoofed UDP sources costs bounded memory.

Bans live in their own table, apart from the rate-counting records, so a flood of new sources can
never push a ban out. Only new *bans* displace old ones, oldest first, and a ban costs the sender
more than `requests_per_window` requests: freeing a banned attacker by filling the table with
spoofed bans takes ~`max_bans` * 17 packets (170 000 by default) and buys it 16 more requests
before it is banned again.

`RegisterLockout` locks an account name (from any source) after repeated failed REGISTERs; while
it is locked the SIP layer answers exactly as for a wrong password. `LogLimiter` keeps hostile
input from flooding the journal: one line per (source, kind) per interval and a global budget of
lines per interval, with the suppressed counts reported on the next line.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from appliance.clock import Clock
from appliance.errors import ConfigError

log = logging.getLogger(__name__)

# Account names longer than this are truncated before they become a table key: no real account
# is this long, and an attacker must not make each of the bounded entries arbitrarily large.
MAX_USERNAME_KEY = 128

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Every number the guard enforces; the defaults follow the product issue."""

    requests_per_window: int = 16  # more requests than this within window_seconds ban the source
    window_seconds: float = 2.0
    ban_seconds: float = 300.0
    register_failures: int = 5  # this many failed REGISTERs lock the account name
    lockout_seconds: float = 600.0  # also how long a failure is remembered without a newer one
    max_tracked_sources: int = 10_000  # rate-counting records; least recently seen evicted first
    max_bans: int = 10_000  # banned sources; the oldest ban is lifted first when full
    max_tracked_accounts: int = 10_000  # failure counters, and separately locked accounts
    log_interval_seconds: float = 60.0  # one line per (source, kind) per interval
    log_lines_per_interval: int = 100  # all sources together: a spoofed flood must not fill the journal
    trusted: Sequence[Network] = ()  # trunks and proxies (they aggregate many users): never banned

    def __post_init__(self) -> None:
        for name in ("requests_per_window", "register_failures", "max_tracked_sources", "max_bans",
                     "max_tracked_accounts", "log_lines_per_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SIP guard: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("window_seconds", "ban_seconds", "lockout_seconds", "log_interval_seconds"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"SIP guard: {name} must be a positive number of seconds, got {value}")
        # A tuple, so the limits stay immutable even when the caller passed a list.
        object.__setattr__(self, "trusted", tuple(self.trusted))


class LogLimiter:
    """Decides which lines about hostile input get logged.

    Usage: `if limiter.should_log(ip, "malformed"): log.warning("...%s", ..., limiter.note(ip, "malformed"))`.
    """

    def __init__(self, limits: GuardLimits, clock: Clock) -> None:
        self._limits = limits
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _LogEntry] = OrderedDict()
        # The global budget uses a fixed window: unlike the ban limit, being off by 2x at an edge is harmless.
        self._budget_ends = -math.inf
        self._budget_left = 0
        self._budget_warned = False
        self._overflow = 0  # lines dropped by the global budget since the last line logged

    def should_log(self, source: str, kind: str) -> bool:
        """True for the first (source, kind) line per interval, while the global budget lasts."""
        now = self._clock.monotonic()
        key = (source, kind)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)  # a noisy source stays tracked, so it stays quiet
            if now < entry.next_allowed:
                entry.suppressed += 1
                return False
        if now >= self._budget_ends:
            self._budget_ends = now + self._limits.log_interval_seconds
            self._budget_left = self._limits.log_lines_per_interval
            self._budget_warned = False
        if self._budget_left == 0:
            self._overflow += 1
            if not self._budget_warned:
                self._budget_warned = True
                log.warning("SIP guard: %d log lines in %g s (log_lines_per_interval): suppressing the rest "
                            "until the interval ends", self._limits.log_lines_per_interval,
                            self._limits.log_interval_seconds)
            return False
        self._budget_left -= 1
        if entry is None:
            if len(self._entries) >= self._limits.max_tracked_sources:
                self._entries.popitem(last=False)
            entry = self._entries[key] = _LogEntry()
        entry.next_allowed = now + self._limits.log_interval_seconds
        entry.reported, entry.suppressed = entry.suppressed, 0
        entry.overflow, self._overflow = self._overflow, 0
        return True

    def note(self, source: str, kind: str) -> str:
        """The suffix for the line `should_log` just allowed: " (12 more suppressed)" or ""."""
        entry = self._entries.get((source, kind))
        if entry is None:
            return ""
        parts = []
        if entry.reported:
            parts.append(f"{entry.reported} more suppressed")
        if entry.overflow:
            parts.append(f"{entry.overflow} lines about other sources suppressed")
        return f" ({'; '.join(parts)})" if parts else ""


class _LogEntry:
    __slots__ = ("next_allowed", "overflow", "reported", "suppressed")

    def __init__(self) -> None:
        self.next_allowed = -math.inf
        self.suppressed = 0  # since the last line logged
        self.reported = 0  # what the last line logged reports as suppressed
        self.overflow = 0


class _Source:
    """The arrival times of one source's last `requests_per_window` requests, as a ring.

    Why a ring rather than a counter: a fixed-window counter lets 2x the limit through across a window
    edge, and a token bucket lets a full bucket plus its refill through within one window. The ring
    is exact: a request arriving less than `window_seconds` after the oldest of the last N is the
    N+1st within the window. It costs N doubles per source and O(1) per request.
    """

    __slots__ = ("index", "times", "trusted")

    def __init__(self, size: int) -> None:
        self.times = array("d", [-math.inf]) * size
        self.index = 0  # the oldest entry, overwritten next
        self.trusted: bool | None = None  # looked up once, when the source first goes over the limit


class SourceGuard:
    """Per-source flood limit and bans; owns the shared `log_limiter` and the `accounts` lockout."""

    def __init__(self, limits: GuardLimits, clock: Clock) -> None:
        self._limits = limits
        self._clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        # ip -> monotonic end. All bans last ban_seconds, so insertion order is expiry order.
        self._bans: dict[str, float] = {}
        self.log_limiter = LogLimiter(limits, clock)
        self.accounts = RegisterLockout(limits, clock, self.log_limiter)

    def admit(self, ip: str, is_request: bool) -> bool:
        """False: drop the message silently. Only requests count, so answers to us never ban a trunk."""
        now = self._clock.monotonic()
        if self._bans:
            until = self._bans.get(ip)
            if until is not None:
                if now < until:
                    return False
                del self._bans[ip]
        if not is_request:
            return True
        source = self._sources.get(ip)
        if source is None:
            if len(self._sources) >= self._limits.max_tracked_sources:
                self._sources.popitem(last=False)
            source = self._sources[ip] = _Source(self._limits.requests_per_window)
        else:
            self._sources.move_to_end(ip)
        oldest = source.times[source.index]
        # Half-open window: the request exactly window_seconds after the oldest one is fine.
        if now - oldest < self._limits.window_seconds:
            if source.trusted is None:
                source.trusted = self._is_trusted(ip)
            if not source.trusted:
                self._ban(ip, now, now - oldest)
                return False
        source.times[source.index] = now
        source.index = (source.index + 1) % self._limits.requests_per_window
        return True

    def banned(self, ip: str) -> bool:
        until = self._bans.get(ip)
        return until is not None and self._clock.monotonic() < until

    def bans(self) -> list[tuple[str, float]]:
        """The sources banned now and the seconds each ban has left, soonest to end first."""
        now = self._clock.monotonic()
        while self._bans:
            ip, until = next(iter(self._bans.items()))
            if until > now:
                break
            del self._bans[ip]
        return [(ip, until - now) for ip, until in self._bans.items()]

    def unban(self, ip: str) -> bool:
        """Lift a ban (from the web panel); True if the source was banned."""
        was_banned = self.banned(ip)
        self._bans.pop(ip, None)
        return was_banned

    @property
    def tracked(self) -> int:
        """How many sources have rate-counting records (at most max_tracked_sources)."""
        return len(self._sources)

    def _ban(self, ip: str, now: float, span: float) -> None:
        limits = self._limits
        del self._sources[ip]  # counting starts afresh when the ban ends
        if len(self._bans) >= limits.max_bans:
            oldest = next(iter(self._bans))
            del self._bans[oldest]
        self._bans[ip] = now + limits.ban_seconds
        if self.log_limiter.should_log(ip, "ban"):
            log.warning("banning %s for %g s: %d requests in %g s (%d per %g s allowed)%s", ip,
                        limits.ban_seconds, limits.requests_per_window + 1, span, limits.requests_per_window,
                        limits.window_seconds, self.log_limiter.note(ip, "ban"))

    def trusted(self, ip: str) -> bool:
        """Is `ip` in a trusted network (a trunk or proxy: never banned, no per-source limits)?"""
        return self._is_trusted(ip)

    def _is_trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False  # not an address, so in no trusted network
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self._limits.trusted)


class RegisterLockout:
    """Locks an account name after `register_failures` failed REGISTERs from any sources.

    A failure is forgotten when no newer one follows within lockout_seconds, so an occasional typo
    never adds up to a lockout while a slow guesser still does. The SIP layer checks `locked()` first
    and then neither checks the password nor reports a failure, so a lock is never extended by the
    attacker who caused it. Locks live apart from the counters, so a spray of made-up names cannot
    push a lock out; only newer locks displace the oldest one when `max_tracked_accounts` are locked.
    """

    def __init__(self, limits: GuardLimits, clock: Clock, log_limiter: LogLimiter) -> None:
        self._limits = limits
        self._clock = clock
        self._log_limiter = log_limiter
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._locks: dict[str, float] = {}  # name -> monotonic end, insertion order is expiry order

    def locked(self, username: str) -> bool:
        key = username[:MAX_USERNAME_KEY]
        until = self._locks.get(key)
        if until is None:
            return False
        if self._clock.monotonic() < until:
            return True
        del self._locks[key]
        return False

    def failed(self, username: str, ip: str) -> None:
        """A REGISTER for `username` from `ip` had wrong credentials."""
        if self.locked(username):
            return
        limits = self._limits
        key = username[:MAX_USERNAME_KEY]
        now = self._clock.monotonic()
        record = self._failures.get(key)
        if record is None or now - record.last >= limits.lockout_seconds:
            self._failures.pop(key, None)
            if len(self._failures) >= limits.max_tracked_accounts:
                self._failures.popitem(last=False)
            record = self._failures[key] = _Failures()
        else:
            self._failures.move_to_end(key)
        record.count += 1
        record.last = now
        if record.count < limits.register_failures:
            return
        del self._failures[key]
        if len(self._locks) >= limits.max_tracked_accounts:
            del self._locks[next(iter(self._locks))]
        self._locks[key] = now + limits.lockout_seconds
        if self._log_limiter.should_log(ip, "lockout"):
            log.warning("locking account %r for %g s: %d failed REGISTERs, the last from %s%s", key,
                        limits.lockout_seconds, limits.register_failures, ip, self._log_limiter.note(ip, "lockout"))

    def succeeded(self, username: str) -> None:
        """A REGISTER for `username` authenticated: its failures are forgotten."""
        self._failures.pop(username[:MAX_USERNAME_KEY], None)

    def locks(self) -> list[tuple[str, float]]:
        """The locked account names and the seconds each lock has left, soonest to end first."""
        now = self._clock.monotonic()
        return [(name, until - now) for name, until in self._locks.items() if until > now]

    def unlock(self, username: str) -> bool:
        """Lift a lock (from the web panel); True if the account was locked."""
        was_locked = self.locked(username)
        self._locks.pop(username[:MAX_USERNAME_KEY], None)
        self._failures.pop(username[:MAX_USERNAME_KEY], None)
        return was_locked


class _Failures:
    __slots__ = ("count", "last")

    def __init__(self) -> None:
        self.count = 0
        self.last = -math.inf
