"""RFC 3263 server location against a tiny authoritative DNS server on 127.0.0.1, started per test."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from appliance.sip import dns as sipdns
from appliance.sip.dns import NEGATIVE_CACHE_TTL, DnsError, SipResolver, Target
from appliance.sip.errors import SipError

ORIGIN = dns.name.from_text("example.test.")
SLOW = dns.name.from_text("slow.example.test.")  # never answered: the resolver must give up in time
SLOW_SRV = dns.name.from_text("srvslow.example.test.")  # only its SRV queries go unanswered
SOA = dns.rrset.from_text(ORIGIN, 60, "IN", "SOA", "ns.example.test. admin.example.test. 1 3600 600 86400 60")

MULTI_UDP_SRV = ("10 60 5060 a.multi", "10 30 5070 b.multi", "10 10 5080 c.multi", "20 0 5090 backup.multi")
# (owner, ttl, type, rdata...): one RRset each; owners and targets are relative to example.test.
ZONE: list[tuple[str, int, str, *tuple[str, ...]]] = [
    ("_sip._udp.multi", 300, "SRV", *MULTI_UDP_SRV),
    ("_sip._tcp.multi", 300, "SRV", "0 0 5060 a.multi"),
    ("a.multi", 300, "A", "192.0.2.1"),
    ("a.multi", 300, "AAAA", "2001:db8::1"),
    ("b.multi", 300, "A", "192.0.2.2"),
    ("c.multi", 300, "A", "192.0.2.3"),
    ("backup.multi", 300, "A", "192.0.2.9"),
    ("_sips._tcp.secure", 300, "SRV", "0 0 5061 edge.secure"),
    ("edge.secure", 300, "A", "192.0.2.20"),
    ("plain", 60, "A", "192.0.2.50"),  # no SRV at all
    ("plain", 60, "AAAA", "2001:db8::50"),
    ("srvslow", 60, "A", "192.0.2.70"),
    ("_sip._udp.closed", 300, "SRV", "0 0 0 ."),
    ("_sip._tcp.closed", 300, "SRV", "0 0 0 ."),
    ("closed", 300, "A", "192.0.2.60"),  # must not be used: the SRV records said "not here"
    ("_sip._udp.lost", 300, "SRV", "0 0 5060 nowhere.lost"),
]
MULTI_UDP_HOSTS = {"192.0.2.1": 5060, "2001:db8::1": 5060, "192.0.2.2": 5070, "192.0.2.3": 5080}


class ZoneServer(asyncio.DatagramProtocol):
    """Answers from ZONE with the AA flag, NXDOMAIN for unknown names, silence below SLOW; counts queries."""

    def __init__(self) -> None:
        self.rrsets: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset] = {}
        self.names: set[dns.name.Name] = set()
        for owner, ttl, rdtype, *rdatas in ZONE:
            name = dns.name.from_text(owner, ORIGIN)
            rrset = dns.rrset.from_text_list(name, ttl, "IN", rdtype, rdatas, origin=ORIGIN, relativize=False)
            self.rrsets[(name, rrset.rdtype)] = rrset
            while name != ORIGIN.parent():  # the owner and its ancestors exist (empty non-terminals)
                self.names.add(name)
                name = name.parent()
        self.queries: Counter[tuple[str, str]] = Counter()
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport, though it is one.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        self.queries[(question.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype))] += 1
        srv_slow = question.name.is_subdomain(SLOW_SRV) and question.rdtype == dns.rdatatype.SRV
        if question.name.is_subdomain(SLOW) or srv_slow:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        rrset = self.rrsets.get((question.name, question.rdtype))
        if rrset is not None:
            response.answer.append(rrset)
        else:
            if question.name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(SOA)
        assert self._transport is not None
        self._transport.sendto(response.to_wire(), addr)

    def count(self, name: str, rdtype: str) -> int:
        return self.queries[(name, rdtype)]


@pytest.fixture
async def server() -> AsyncIterator[ZoneServer]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        ZoneServer, local_addr=("127.0.0.1", 0)
    )
    try:
        yield protocol
    finally:
        transport.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resolver_for(
    server: ZoneServer,
    *,
    timeout: float = sipdns.LOOKUP_TIMEOUT,
    prefer_ipv6: bool = False,
    rng: random.Random | None = None,
    now: Callable[[], float] = time.monotonic,
) -> SipResolver:
    return SipResolver([("127.0.0.1", server.port)], timeout, prefer_ipv6=prefer_ipv6, rng=rng, now=now)


async def test_srv_priority_and_weighted_order(server: ZoneServer) -> None:
    resolver = resolver_for(server, rng=random.Random(1234))
    first: Counter[str] = Counter()
    for _ in range(1000):
        targets = await resolver.resolve("multi.example.test", transport="udp")
        assert {(t.host, t.port) for t in targets[:-1]} == set(MULTI_UDP_HOSTS.items())
        assert targets[-1] == Target("udp", "192.0.2.9", 5090)  # priority 20 comes after every priority 10
        first[targets[0].host] += 1
    # Weights 60/30/10 within priority 10; a.multi has two addresses, IPv4 first.
    assert 550 < first["192.0.2.1"] < 650
    assert 250 < first["192.0.2.2"] < 350
    assert 60 < first["192.0.2.3"] < 140
    assert first["2001:db8::1"] == 0


async def test_seeded_order_repeats(server: ZoneServer) -> None:
    one = await resolver_for(server, rng=random.Random(7)).resolve("multi.example.test", transport="udp")
    two = await resolver_for(server, rng=random.Random(7)).resolve("multi.example.test", transport="udp")
    assert one == two


async def test_open_transport_prefers_udp_then_tcp(server: ZoneServer) -> None:
    targets = await resolver_for(server).resolve("multi.example.test")
    assert [t.transport for t in targets] == ["udp"] * 5 + ["tcp"] * 2
    assert targets[-2:] == [Target("tcp", "192.0.2.1", 5060), Target("tcp", "2001:db8::1", 5060)]


async def test_explicit_port_skips_srv(server: ZoneServer) -> None:
    targets = await resolver_for(server).resolve("a.multi.example.test", 5099, "tcp")
    assert targets == [Target("tcp", "192.0.2.1", 5099), Target("tcp", "2001:db8::1", 5099)]
    assert not any(rdtype == "SRV" for _, rdtype in server.queries)


async def test_no_srv_falls_back_to_addresses(server: ZoneServer) -> None:
    targets = await resolver_for(server).resolve("Plain.Example.Test.")
    assert targets == [Target("udp", "192.0.2.50", 5060), Target("udp", "2001:db8::50", 5060)]
    ipv6_first = await resolver_for(server, prefer_ipv6=True).resolve("plain.example.test", 5060)
    assert [t.host for t in ipv6_first] == ["2001:db8::50", "192.0.2.50"]


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("192.0.2.7", None, False, Target("udp", "192.0.2.7", 5060)),
        ("192.0.2.7", 5080, False, Target("udp", "192.0.2.7", 5080)),
        ("2001:DB8:0::7", None, False, Target("udp", "2001:db8::7", 5060)),
        ("[2001:db8::7]", 5070, False, Target("udp", "2001:db8::7", 5070)),
        ("[::1]", None, True, Target("tls", "::1", 5061)),
    ],
)
async def test_ip_literals_need_no_lookup(
    server: ZoneServer, host: str, port: int | None, secure: bool, expected: Target
) -> None:
    assert await resolver_for(server).resolve(host, port, secure=secure) == [expected]
    assert not server.queries


async def test_tls_uses_sips_srv_and_port_5061(server: ZoneServer) -> None:
    resolver = resolver_for(server)
    assert await resolver.resolve("secure.example.test", secure=True) == [Target("tls", "192.0.2.20", 5061)]
    assert server.count("_sips._tcp.secure.example.test", "SRV") == 1
    assert not any(name.startswith("_sip.") for name, _ in server.queries)
    fallback = await resolver.resolve("plain.example.test", transport="tls")
    assert fallback == [Target("tls", "192.0.2.50", 5061), Target("tls", "2001:db8::50", 5061)]
    with pytest.raises(DnsError, match="SIPS needs TLS"):
        await resolver.resolve("plain.example.test", transport="udp", secure=True)


async def test_srv_target_dot_means_no_service(server: ZoneServer) -> None:
    with pytest.raises(DnsError, match=r'_sip._udp.closed.example.test: service not offered \(target "."\)'):
        await resolver_for(server).resolve("closed.example.test")
    assert server.count("closed.example.test", "A") == 0


async def test_srv_target_without_address(server: ZoneServer) -> None:
    with pytest.raises(DnsError, match=r"SRV targets have no address: nowhere\.lost\.example\.test A/AAAA: NXDOMAIN$"):
        await resolver_for(server).resolve("lost.example.test", transport="udp")


async def test_cache_hit_sends_no_query(server: ZoneServer) -> None:
    resolver = resolver_for(server)
    first = await resolver.resolve("secure.example.test", secure=True)
    assert await resolver.resolve("secure.example.test", secure=True) == first
    assert server.count("_sips._tcp.secure.example.test", "SRV") == 1
    assert server.count("edge.secure.example.test", "A") == 1


async def test_ttl_expiry_queries_again(server: ZoneServer) -> None:
    clock = FakeClock()
    resolver = resolver_for(server, now=clock)
    await resolver.resolve("plain.example.test", 5060)
    clock.now += 59  # the zone's TTL is 60 s
    await resolver.resolve("plain.example.test", 5060)
    assert server.count("plain.example.test", "A") == 1
    clock.now += 2
    await resolver.resolve("plain.example.test", 5060)
    assert server.count("plain.example.test", "A") == 2
    assert server.count("plain.example.test", "AAAA") == 2


async def test_negative_answers_are_cached_briefly(server: ZoneServer) -> None:
    clock = FakeClock()
    resolver = resolver_for(server, now=clock)
    message = (
        "no SIP server found for missing.example.test: SRV _sip._udp.missing.example.test: NXDOMAIN; "
        "SRV _sip._tcp.missing.example.test: NXDOMAIN; A/AAAA: NXDOMAIN"
    )
    for _ in range(2):
        with pytest.raises(DnsError) as raised:
            await resolver.resolve("missing.example.test")
        assert str(raised.value) == message
        assert isinstance(raised.value, SipError)
    assert server.count("_sip._udp.missing.example.test", "SRV") == 1
    assert server.count("missing.example.test", "A") == 1
    clock.now += NEGATIVE_CACHE_TTL + 1
    with pytest.raises(DnsError):
        await resolver.resolve("missing.example.test")
    assert server.count("missing.example.test", "A") == 2


async def test_cache_is_bounded(server: ZoneServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sipdns, "CACHE_MAX_ENTRIES", 2)
    resolver = resolver_for(server)
    for host in ("plain.example.test", "plain.example.test", "a.multi.example.test", "plain.example.test"):
        await resolver.resolve(host, 5060)
    assert server.count("plain.example.test", "A") == 2  # evicted by a.multi's A and AAAA
    assert server.count("a.multi.example.test", "AAAA") == 1


@pytest.mark.parametrize("port", [None, 5060])
async def test_timeout_gives_dns_error_within_bound(server: ZoneServer, port: int | None) -> None:
    resolver = resolver_for(server, timeout=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DnsError, match=r"^no SIP server found for slow\.example\.test: .*no answer within 1 s"):
        await resolver.resolve("slow.example.test", port)
    assert 0.9 < loop.time() - started < 1.5


async def test_lost_srv_answer_leaves_time_for_addresses(server: ZoneServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sipdns, "QUERY_TIMEOUT", 0.3)
    resolver = resolver_for(server, timeout=2.0)
    loop = asyncio.get_running_loop()
    for attempt in (1, 2):
        started = loop.time()
        assert await resolver.resolve("srvslow.example.test") == [Target("udp", "192.0.2.70", 5060)]
        assert 0.2 < loop.time() - started < 1.0
        assert server.count("_sip._udp.srvslow.example.test", "SRV") == attempt  # a timeout is not cached


async def test_localhost_through_system_resolver() -> None:
    resolver = SipResolver(timeout=5.0)
    default = await resolver.resolve("localhost")
    explicit = await resolver.resolve("localhost", 5070, "tcp")
    for targets, transport, port in ((default, "udp", 5060), (explicit, "tcp", 5070)):
        assert targets
        assert {t.host for t in targets} <= {"127.0.0.1", "::1"}
        assert {(t.transport, t.port) for t in targets} == {(transport, port)}


@pytest.mark.parametrize("host", ["sip example.test", "a..b", "[not-an-ip]", "x" * 64 + ".test", ""])
async def test_bad_host_names_are_reported(host: str) -> None:
    with pytest.raises(DnsError, match="is not a valid host name"):
        await SipResolver([("127.0.0.1", 53)]).resolve(host)


def test_bad_configuration() -> None:
    with pytest.raises(DnsError, match="needs an IP address"):
        SipResolver([("dns.example.test", 53)])
    with pytest.raises(DnsError, match="empty"):
        SipResolver([])
