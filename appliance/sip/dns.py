"""Locating SIP servers (RFC 3263 section 4) without blocking the event loop.

`SipResolver.resolve()` turns the host of a SIP URI, with its optional port, transport and the sips flag,
into the `Target`s to try, best first:

* an IP literal (``192.0.2.1``, ``2001:db8::1``, ``[2001:db8::1]``) is the target itself;
* an explicit port means A/AAAA only, no SRV (RFC 3263 4.2);
* otherwise SRV ``_sips._tcp`` for sips or TLS, else ``_sip._udp`` and/or ``_sip._tcp``: both when the
  transport is open, UDP targets first. Records are ordered per RFC 2782 (priority, then weighted random)
  and each target is resolved to its addresses, IPv4 first unless `prefer_ipv6`. A lone target "."
  means the domain does not offer that service;
* no SRV records at all: A/AAAA of the host itself on 5060 (5061 for TLS), UDP unless told otherwise.

NAPTR (RFC 3263 4.1) is skipped, as most deployed user agents do: trunks publish SRV directly, and NAPTR
would add a round trip to every uncached lookup to learn a transport preference we already assume.

With explicit nameservers every query goes to them through dnspython's asyncio resolver. Without, SRV
uses dnspython configured from /etc/resolv.conf, and A/AAAA use the C library's getaddrinfo (on an
executor thread, so the loop never blocks): /etc/hosts and nsswitch then apply as for every other program.
"localhost" names never go to DNS (RFC 6761 6.3): no SRV, and their addresses always come from getaddrinfo.

Answers are cached by TTL (negative ones briefly) in a bounded LRU, read on the injected `now` clock, so a
trunk re-registering every minute does not query each time. Failures (timeouts, SERVFAIL) are not cached:
the next attempt asks again. One `resolve()` call is bounded by `timeout` on the event loop's clock, the
only one that can interrupt a pending query; each single query gets at most `QUERY_TIMEOUT` of it, so a
lost SRV answer still leaves time for the A/AAAA fallback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdtypes.IN.SRV
import dns.resolver

from appliance.sip.errors import SipError

Transport = Literal["udp", "tcp", "tls"]
TRANSPORTS: tuple[Transport, ...] = ("udp", "tcp", "tls")


def as_transport(name: str | None) -> Transport | None:
    """A URI's transport parameter as the resolver takes it; None for none or one we do not speak."""
    return next((t for t in TRANSPORTS if t == (name or "").lower()), None)

SIP_PORT = 5060
SIPS_PORT = 5061
MAX_PORT = 65535
MAX_NAME_LENGTH = 253  # RFC 1035 2.3.4, in text form without the final dot
LOOKUP_TIMEOUT = 8.0  # seconds for one resolve(): SRV, then the targets' A/AAAA, each within QUERY_TIMEOUT
QUERY_TIMEOUT = 3.0  # seconds for one query, retransmissions included
RETRANSMIT_INTERVAL = 1.0  # seconds before a UDP query is sent again: a lost datagram costs one second
CACHE_MAX_ENTRIES = 1024  # (name, type) pairs; a gateway talks to a handful of trunks
CACHE_MAX_TTL = 3600.0  # a zone's huge TTL must not pin a moved trunk to its old address all day
NEGATIVE_CACHE_TTL = 30.0  # NXDOMAIN / no records: short, so a record just added is found soon
SYSTEM_CACHE_TTL = 300.0  # getaddrinfo tells no TTL; the C library or a local cache keeps its own anyway

# RFC 1123 host names, plus "_" which SRV owners and some internal zones use; checked before any lookup so a
# typo in the configuration is reported as such instead of as NXDOMAIN.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


class DnsError(SipError, LookupError):
    """No SIP server could be located for a host; the message says what each lookup found."""


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send requests to: a transport, an IP literal (no brackets) and a port."""

    transport: Transport
    host: str
    port: int


class _Srv(NamedTuple):
    priority: int
    weight: int
    port: int
    target: str  # lower case, no final dot; "" for ".", "service not available" (RFC 2782)


@dataclass(frozen=True, slots=True)
class _Answer:
    """One query's outcome: its records, or in `problem` why there are none ("NXDOMAIN", ...)."""

    srv: tuple[_Srv, ...] = ()
    addresses: tuple[str, ...] = ()
    problem: str = ""


class SipResolver:
    """Resolves SIP hosts to ordered `Target`s; one instance per configuration, as it holds the cache."""

    def __init__(
        self,
        nameservers: list[tuple[str, int]] | None = None,
        timeout: float = LOOKUP_TIMEOUT,
        *,
        prefer_ipv6: bool = False,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not timeout > 0:
            raise DnsError(f"DNS timeout must be positive, not {timeout}")
        self._timeout = timeout
        self._query_timeout = min(QUERY_TIMEOUT, timeout)
        self._prefer_ipv6 = prefer_ipv6
        self._rng = rng if rng is not None else random.Random()
        self._now = now
        self._system = nameservers is None
        self._cache: OrderedDict[tuple[str, str], tuple[float, _Answer]] = OrderedDict()
        self._dns = _make_dns_resolver(nameservers)

    async def resolve(
        self, host: str, port: int | None = None, transport: Transport | None = None, secure: bool = False
    ) -> list[Target]:
        """The targets for `host`, best first, never empty; raises `DnsError` within `timeout` seconds."""
        secure = secure or transport == "tls"
        if secure and transport == "udp":
            raise DnsError(f"sips:{host} cannot use UDP: SIPS needs TLS")
        if port is not None and not 0 < port <= MAX_PORT:
            raise DnsError(f"port {port} of {host} is not in 1-{MAX_PORT}")
        # RFC 3263 4.1: without a transport, UDP for sip and TLS for sips.
        final: Transport = "tls" if secure else (transport or "udp")
        literal = _ip_literal(host)
        if literal is not None:
            return [Target(final, literal, port or (SIPS_PORT if secure else SIP_PORT))]
        name = host.rstrip(".").lower()
        if len(name) > MAX_NAME_LENGTH or not _HOST_NAME.fullmatch(name):
            raise DnsError(f"{host!r} is not a valid host name or IP address")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._resolve_name(name, port, transport, final)
        except TimeoutError:
            raise DnsError(f"no SIP server found for {name}: no answer within {self._timeout:g} s") from None

    async def _resolve_name(
        self, name: str, port: int | None, transport: Transport | None, final: Transport
    ) -> list[Target]:
        """`final`: the transport for targets that SRV did not choose, "tls" exactly when secure."""
        default_port = SIPS_PORT if final == "tls" else SIP_PORT
        if port is not None or _is_localhost(name):
            return await self._host_targets(name, final, port or default_port, [])
        if final == "tls":
            services: list[tuple[Transport, str]] = [("tls", f"_sips._tcp.{name}")]
        else:
            services = [(t, f"_sip._{t}.{name}") for t in ((transport,) if transport else ("udp", "tcp"))]
        answers = await asyncio.gather(*(self._query(qname, "SRV") for _, qname in services))
        offered: list[tuple[Transport, _Srv]] = []
        problems: list[str] = []
        declined = False
        for (service_transport, qname), answer in zip(services, answers, strict=True):
            usable = [record for record in answer.srv if record.target]
            offered += [(service_transport, record) for record in _order_srv(usable, self._rng)]
            if answer.srv and not usable:
                declined = True
                problems.append(f'SRV {qname}: service not offered (target ".")')
            elif not answer.srv:
                problems.append(f"SRV {qname}: {answer.problem}")
        if offered:
            return await self._srv_targets(name, offered)
        if declined:
            # The domain published SRV and said "not here": its A record is no SIP server (RFC 2782).
            raise DnsError(f"no SIP server found for {name}: " + "; ".join(problems))
        return await self._host_targets(name, final, default_port, problems)

    async def _srv_targets(self, name: str, offered: list[tuple[Transport, _Srv]]) -> list[Target]:
        hosts = list(dict.fromkeys(record.target for _, record in offered))
        found = dict(zip(hosts, await asyncio.gather(*(self._addresses(host) for host in hosts)), strict=True))
        targets = [
            Target(transport, address, record.port)
            for transport, record in offered
            for address in found[record.target][0]
        ]
        if not targets:
            details = "; ".join(f"{host} {problem}" for host, (_, problem) in found.items())
            raise DnsError(f"no SIP server found for {name}: its SRV targets have no address: {details}")
        return list(dict.fromkeys(targets))  # two records naming one host must not double its attempts

    async def _host_targets(self, name: str, transport: Transport, port: int, problems: list[str]) -> list[Target]:
        addresses, problem = await self._addresses(name)
        if not addresses:
            raise DnsError(f"no SIP server found for {name}: " + "; ".join([*problems, problem]))
        return [Target(transport, address, port) for address in addresses]

    async def _addresses(self, name: str) -> tuple[list[str], str]:
        """The addresses of `name` in preference order, and what A/AAAA said if there are none."""
        v4, v6 = await asyncio.gather(self._query(name, "A"), self._query(name, "AAAA"))
        first, second = (v6, v4) if self._prefer_ipv6 else (v4, v6)
        same = v4.problem == v6.problem
        problem = f"A/AAAA: {v4.problem}" if same else f"A: {v4.problem}, AAAA: {v6.problem}"
        return list(dict.fromkeys((*first.addresses, *second.addresses))), problem

    async def _query(self, qname: str, rdtype: Literal["SRV", "A", "AAAA"]) -> _Answer:
        key = (qname, rdtype)
        cached = self._cache.get(key)
        if cached is not None:
            expires, answer = cached
            if self._now() < expires:
                self._cache.move_to_end(key)
                return answer
            del self._cache[key]
        if rdtype != "SRV" and (self._system or _is_localhost(qname)):
            answer, ttl = await self._ask_system(qname, rdtype)
        else:
            answer, ttl = await self._ask_dns(qname, rdtype)
        if ttl > 0:
            self._cache[key] = (self._now() + min(ttl, CACHE_MAX_TTL), answer)
            self._cache.move_to_end(key)  # a concurrent lookup of the same key may have stored it meanwhile
            if len(self._cache) > CACHE_MAX_ENTRIES:
                self._cache.popitem(last=False)
        return answer

    async def _ask_dns(self, qname: str, rdtype: str) -> tuple[_Answer, float]:
        """One DNS query and how long its outcome may be cached (0: not at all)."""
        if self._dns is None:
            return _Answer(problem="no DNS server in /etc/resolv.conf"), 0.0
        try:
            reply = await self._dns.resolve(qname + ".", rdtype, search=False, lifetime=self._query_timeout)
        except dns.resolver.NXDOMAIN:
            return _Answer(problem="NXDOMAIN"), NEGATIVE_CACHE_TTL
        except dns.resolver.NoAnswer:
            return _Answer(problem="no records"), NEGATIVE_CACHE_TTL
        except dns.exception.Timeout:
            return _Answer(problem=f"no answer within {self._query_timeout:g} s"), 0.0
        except dns.resolver.NoNameservers:
            return _Answer(problem="DNS server failure (SERVFAIL, refused or unreachable)"), 0.0
        except dns.exception.DNSException as error:
            return _Answer(problem=str(error)), 0.0
        ttl = float(reply.rrset.ttl) if reply.rrset is not None else 0.0
        if rdtype != "SRV":
            return _Answer(addresses=tuple(record.to_text() for record in reply)), ttl
        records = tuple(
            _Srv(
                record.priority,
                record.weight,
                record.port,
                "" if record.target == dns.name.root else record.target.to_text(omit_final_dot=True).lower(),
            )
            for record in reply
            if isinstance(record, dns.rdtypes.IN.SRV.SRV)
        )
        return _Answer(srv=records), ttl

    async def _ask_system(self, name: str, rdtype: str) -> tuple[_Answer, float]:
        """A or AAAA through getaddrinfo, which also reads /etc/hosts; and how long to cache the outcome."""
        family = socket.AF_INET if rdtype == "A" else socket.AF_INET6
        try:
            async with asyncio.timeout(self._query_timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(name, None, family=family, type=socket.SOCK_DGRAM)
        except TimeoutError:
            return _Answer(problem=f"no answer within {self._query_timeout:g} s"), 0.0
        except socket.gaierror as error:
            # EAI_AGAIN is a temporary failure (server unreachable, SERVFAIL); the others are answers.
            ttl = 0.0 if error.errno == socket.EAI_AGAIN else NEGATIVE_CACHE_TTL
            return _Answer(problem=(error.strerror or str(error)).lower()), ttl
        return _Answer(addresses=tuple(dict.fromkeys(str(info[4][0]) for info in infos))), SYSTEM_CACHE_TTL


def _make_dns_resolver(nameservers: list[tuple[str, int]] | None) -> dns.asyncresolver.Resolver | None:
    if nameservers is None:
        try:
            resolver = dns.asyncresolver.Resolver()  # reads /etc/resolv.conf
        except dns.resolver.NoResolverConfiguration:
            return None  # no DNS at all: SRV finds nothing and getaddrinfo still reads /etc/hosts
    else:
        if not nameservers:
            raise DnsError("the list of DNS servers is empty")
        servers: list[str | dns.nameserver.Nameserver] = []
        for address, port in nameservers:
            literal = _ip_literal(address)
            if literal is None or not 0 < port <= MAX_PORT:
                raise DnsError(f"DNS server {address} port {port}: needs an IP address and a port in 1-{MAX_PORT}")
            servers.append(dns.nameserver.Do53Nameserver(literal, port))
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = servers
    resolver.timeout = RETRANSMIT_INTERVAL
    return resolver


def _order_srv(records: list[_Srv], rng: random.Random) -> list[_Srv]:
    """RFC 2782 order: priority ascending; within one priority, repeatedly a weighted random pick."""
    ordered: list[_Srv] = []
    for priority in sorted({record.priority for record in records}):
        # Zero weights first, as the RFC says, so they are picked only when the draw is 0 or they are all left;
        # then a full sort, as servers shuffle their answers: the same rng must give the same order.
        group = sorted((r for r in records if r.priority == priority), key=lambda r: (r.weight != 0, r))
        while group:
            draw = rng.randint(0, sum(record.weight for record in group))
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= draw:
                    ordered.append(group.pop(index))
                    break
    return ordered


def _ip_literal(host: str) -> str | None:
    """`host` as a canonical IP address string if it is one (IPv6 with or without brackets), else None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")
