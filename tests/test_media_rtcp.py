"""RTCP: compound packets both ways, and the receive statistics of RFC 3550 appendix A.

Proven: compound packets in the shape softphones and PBXes send (SR+SDES, RR+SDES+BYE) parse and
serialize to the same bytes; feedback, APP and XR packets are stepped over; truncated or foreign bytes
raise RtcpError and nothing else; every field limit is refused on serialize. ReceptionStats gives the
RFC's numbers for in-order, lossy, reordered, duplicated and wrapping streams, a known jitter pattern,
and re-synchronises after a restart as A.1 says.
"""

from __future__ import annotations

import contextlib
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.media.rtcp import (
    CNAME,
    MAX_COUNT,
    MAX_TEXT,
    REPORT_INTERVAL,
    Goodbye,
    ReceiverReport,
    ReceptionReport,
    ReceptionStats,
    RtcpError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    next_report_delay,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
    round_trip_time,
    serialize_compound,
)

# SR + SDES as a softphone sends while it talks (the shape of baresip's reports).
SR_SDES = bytes.fromhex(
    "81c8000c"  # V=2 P=0 RC=1, PT=200 SR, length 12 words -> 52 bytes
    "3b9aca07"  # sender SSRC
    "eb8b4c6e80000000"  # NTP timestamp: seconds 0xeb8b4c6e, fraction .5
    "00027100"  # RTP timestamp 160000
    "000003e8"  # sender's packet count 1000
    "00027100"  # sender's octet count 160000
    "5f3759df"  # report block: source SSRC
    "19000040"  # fraction lost 25/256, cumulative lost 64
    "00010a8c"  # extended highest sequence: 1 cycle, seq 2700
    "00000028"  # jitter 40 timestamp units
    "4c6e7fff"  # LSR
    "0000c000"  # DLSR 0.75 s
    "81ca0007"  # V=2 SC=1, PT=202 SDES, 7 words -> 32 bytes
    "3b9aca07"  # chunk SSRC
    "0112" + b"baresip@192.0.2.10".hex() +  # CNAME, 18 bytes
    "00000000"  # null octet ending the items, padded to the word
)
# RR + SDES + BYE as a PBX sends when it hangs up (the shape of Asterisk's last report).
RR_SDES_BYE = bytes.fromhex(
    "81c90007"  # RC=1, PT=201 RR, 7 words -> 32 bytes
    "1a2b3c4d"  # reporter SSRC
    "3b9aca07"  # report block: source SSRC
    "00fffffe"  # fraction 0, cumulative lost -2 (duplicates)
    "00000d05"  # extended highest sequence 3333
    "0000000c"  # jitter 12
    "00000000"  # LSR: no SR heard yet
    "00000000"  # DLSR
    "81ca000b"  # SC=1, PT=202 SDES, 11 words -> 48 bytes
    "1a2b3c4d"
    "0124" + b"4f1c2a0e-8d3b-4c55-9e1a-7b6f0c2d9e81".hex() +  # CNAME, 36 bytes
    "0000"  # the null octet and one byte of padding to the word boundary
    "81cb0003"  # SC=1, PT=203 BYE, 3 words -> 16 bytes
    "1a2b3c4d"
    "06" + b"hangup".hex() + "00"  # reason, length-prefixed, padded to the word
)
# An empty RR followed by what WebRTC-ish peers add: PLI (206), NACK (205), APP (204) and XR (207).
RR_AND_OTHERS = bytes.fromhex(
    "80c90001" "1a2b3c4d"  # RR with no report blocks
    "81ce0002" "1a2b3c4d" "3b9aca07"  # PSFB FMT=1 PLI
    "81cd0003" "1a2b3c4d" "3b9aca07" "00070000"  # RTPFB FMT=1 NACK of seq 7
    "80cc0002" "1a2b3c4d" + b"vxgt".hex() +  # APP with name only
    "80cf0001" "1a2b3c4d"  # XR with no blocks
)


def test_sender_report_with_sdes_round_trips() -> None:
    packets = parse_compound(SR_SDES)
    assert packets == [
        SenderReport(0x3B9ACA07, 0xEB8B4C6E80000000, 160000, 1000, 160000, (
            ReceptionReport(0x5F3759DF, 25, 64, 0x10A8C, 40, 0x4C6E7FFF, 0xC000),)),
        SourceDescription((SdesChunk.with_cname(0x3B9ACA07, "baresip@192.0.2.10"),)),
    ]
    assert serialize_compound(packets) == SR_SDES
    assert SenderReport.parse(SR_SDES[:52]) == packets[0]


def test_receiver_report_sdes_and_bye_round_trip() -> None:
    report, sdes, bye = parse_compound(RR_SDES_BYE)
    assert isinstance(report, ReceiverReport) and report.reports[0].packets_lost == -2
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname == "4f1c2a0e-8d3b-4c55-9e1a-7b6f0c2d9e81"
    assert bye == Goodbye((0x1A2B3C4D,), "hangup")
    assert serialize_compound([report, sdes, bye]) == RR_SDES_BYE


def test_unknown_packet_types_are_skipped() -> None:
    assert parse_compound(RR_AND_OTHERS) == [ReceiverReport(0x1A2B3C4D)]


def test_several_chunks_items_and_odd_text_round_trip() -> None:
    sdes = SourceDescription((
        SdesChunk(1, ((CNAME, "a@b"), (2, "Alice"), (6, "VoxGate"))),
        SdesChunk(2, ((CNAME, b"\xff\xfe".decode("utf-8", "surrogateescape")),)),  # not UTF-8: kept as sent
        SdesChunk(3, ()),
    ))
    data = sdes.serialize()
    assert len(data) % 4 == 0 and SourceDescription.parse(data) == sdes
    assert b"\x01\x02\xff\xfe\x00" in data
    assert sdes.chunks[2].cname is None
    bye = Goodbye((1, 2, 3))
    assert Goodbye.parse(bye.serialize()) == bye and bye.serialize() == bytes.fromhex("83cb0003" "00000001"
                                                                                      "00000002" "00000003")


def test_padding_is_not_content() -> None:
    padded = bytes.fromhex("a0c90002" "1a2b3c4d" "00000004")  # RR, P bit, 4 bytes of padding
    assert parse_compound(padded) == [ReceiverReport(0x1A2B3C4D)]
    padded_bye = bytes.fromhex("a1cb0003" "1a2b3c4d" "03626579" "00000004")  # BYE "bey", then padding
    assert parse_compound(padded_bye) == [Goodbye((0x1A2B3C4D,), "bey")]


def test_profile_extension_is_kept() -> None:
    data = bytes.fromhex("80c90002" "1a2b3c4d" "cafebabe")  # RR with one word of profile-specific extension
    report = ReceiverReport.parse(data)
    assert report.extension == bytes.fromhex("cafebabe") and report.serialize() == data


@pytest.mark.parametrize("data", [
    b"",  # empty datagram
    b"\x81\xc8",  # shorter than a header
    bytes.fromhex("41c90001" "1a2b3c4d"),  # version 1
    bytes.fromhex("80600001" "1a2b3c4d"),  # payload type 96: an RTP packet, not RTCP
    bytes.fromhex("81c90007" "1a2b3c4d" "3b9aca07"),  # length beyond the datagram
    bytes.fromhex("80c90001" "1a2b3c4d" "80c9"),  # a second packet cut inside its header
    bytes.fromhex("81c90001" "1a2b3c4d"),  # RC=1 but no room for the report block
    bytes.fromhex("80c80001" "1a2b3c4d"),  # SR without its sender info
    bytes.fromhex("80c90000"),  # RR without its SSRC
    bytes.fromhex("a0c90001" "1a2b3c00"),  # zero padding count
    bytes.fromhex("a0c90001" "1a2b3c09"),  # 9 bytes of padding in an 8-byte packet
    bytes.fromhex("81ca0002" "1a2b3c4d" "01ff6162"),  # SDES item longer than the packet
    bytes.fromhex("81ca0002" "1a2b3c4d" "01026162"),  # SDES chunk without its null octet
    bytes.fromhex("82ca0002" "1a2b3c4d" "00000000"),  # SC=2 but one chunk
    bytes.fromhex("82cb0001" "1a2b3c4d"),  # BYE for two sources, one there
    bytes.fromhex("81cb0002" "1a2b3c4d" "09616263"),  # BYE reason beyond the packet
])
def test_bad_packets_are_refused(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_compound(data)


def test_single_packet_parse_wants_exactly_that_packet() -> None:
    with pytest.raises(RtcpError, match="type 200"):
        SenderReport.parse(RR_SDES_BYE[:32])
    with pytest.raises(RtcpError, match="type 201"):
        ReceiverReport.parse(RR_SDES_BYE)  # three packets, not one


def test_every_truncation_is_refused_or_ends_on_a_packet_boundary() -> None:
    for capture, boundaries in ((SR_SDES, {52}), (RR_SDES_BYE, {32, 80})):
        for cut in range(1, len(capture)):
            if cut in boundaries:
                assert serialize_compound(parse_compound(capture[:cut])) == capture[:cut]
            else:
                with pytest.raises(RtcpError):
                    parse_compound(capture[:cut])


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        parse_compound(data)


@given(st.integers(0x80, 0xBF), st.integers(200, 207), st.integers(0, 80), st.binary(max_size=300))
def test_random_bodies_raise_only_rtcp_error(first: int, packet_type: int, words: int, body: bytes) -> None:
    # Past the version check, so the per-type body parsers see the garbage.
    with contextlib.suppress(RtcpError):
        parse_compound(bytes((first, packet_type)) + words.to_bytes(2, "big") + body)


@given(st.sampled_from([SR_SDES, RR_SDES_BYE, RR_AND_OTHERS]), st.data())
def test_mutated_captures_raise_only_rtcp_error(capture: bytes, data: st.DataObject) -> None:
    mutated = bytearray(capture)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    try:
        packets = parse_compound(bytes(mutated))
    except RtcpError:
        return
    for packet in packets:  # whatever parsed serializes and parses back the same
        assert parse_compound(packet.serialize()) == [packet]


def test_limits_are_refused_on_serialize() -> None:
    block = ReceptionReport(1, 0, 0, 0, 0, 0, 0)
    ReceiverReport(1, (block,) * MAX_COUNT).serialize()
    with pytest.raises(RtcpError, match="at most 31"):
        ReceiverReport(1, (block,) * (MAX_COUNT + 1)).serialize()
    with pytest.raises(RtcpError, match="at most 31"):
        Goodbye(tuple(range(MAX_COUNT + 1))).serialize()
    SdesChunk.with_cname(1, "x" * MAX_TEXT).serialize()
    with pytest.raises(RtcpError, match="at most 255"):
        SdesChunk.with_cname(1, "x" * (MAX_TEXT + 1)).serialize()
    with pytest.raises(RtcpError, match="at most 255"):
        Goodbye((1,), "é" * 128).serialize()  # 256 bytes of UTF-8
    with pytest.raises(RtcpError, match="item type 0"):
        SdesChunk(1, ((0, "x"),)).serialize()
    with pytest.raises(RtcpError, match="fraction lost"):
        ReceptionReport(1, 256, 0, 0, 0, 0, 0).serialize()
    with pytest.raises(RtcpError, match="24 bits"):
        ReceptionReport(1, 0, 0x800000, 0, 0, 0, 0).serialize()
    lowest = ReceptionReport(1, 0, -0x800000, 0, 0, 0, 0)
    assert ReceptionReport.parse(lowest.serialize()) == lowest


def test_ntp_helpers_and_round_trip_time() -> None:
    assert ntp_timestamp(0.0) == 2208988800 << 32
    assert ntp_timestamp(1.5) == (2208988801 << 32) | 0x80000000
    assert ntp_middle32(0xEB8B4C6E80000000) == 0x4C6E8000
    # The worked example of RFC 3550 section 6.4.1: A 46864.500 s, LSR 46853.125 s, DLSR 5.250 s -> 6.125 s.
    report = ReceptionReport(1, 0, 0, 0, 0, lsr=0xB7052000, dlsr=0x00054000)
    assert round_trip_time(report, 0xB7108000) == 6.125
    assert round_trip_time(ReceptionReport(1, 0, 0, 0, 0, 0, 0), 0xB7108000) is None  # no SR echoed
    assert round_trip_time(report, 0xB7052000) is None  # negative: the peer's DLSR is longer than the wait
    # Across the wrap of the middle 32 bits.
    assert round_trip_time(ReceptionReport(1, 0, 0, 0, 0, 0xFFFF8000, 0x4000), 0x00004000) == 0.5


def test_report_delay_is_randomised_around_the_interval() -> None:
    rng = random.Random(7)
    delays = [next_report_delay(rng) for _ in range(1000)]
    assert all(0.5 * REPORT_INTERVAL <= d <= 1.5 * REPORT_INTERVAL for d in delays)
    assert min(delays) < 0.6 * REPORT_INTERVAL and max(delays) > 1.4 * REPORT_INTERVAL


# ReceptionStats: 8 kHz audio, 20 ms packets of 160 samples unless said otherwise.

def feed(stats: ReceptionStats, sequences: list[int], first: int = 0, ts0: int = 0) -> list[bool]:
    """Packet of sequence s was sent at (s - first) * 20 ms and arrives exactly then."""
    return [stats.received(s & 0xFFFF, (ts0 + (s - first) * 160) & 0xFFFFFFFF, (s - first) * 0.02)
            for s in sequences]


def test_in_order_stream() -> None:
    stats = ReceptionStats(8000)
    valid = feed(stats, list(range(500)))
    assert valid == [False] + [True] * 499  # the first packet is on probation (MIN_SEQUENTIAL 2)
    assert (stats.packets, stats.expected, stats.cumulative_lost) == (499, 499, 0)
    block = stats.report_block(0x1234, None, 10.0)
    assert block == ReceptionReport(0x1234, 0, 0, 499, 0, 0, 0)
    assert stats.jitter_ms == pytest.approx(0, abs=1e-6) and stats.fraction_lost_percent == 0


def test_ten_percent_random_loss() -> None:
    rng = random.Random(3550)
    sent = list(range(6000))
    kept = [s for s in sent if s < 2 or s in (2999, 5999) or rng.random() >= 0.1]
    stats = ReceptionStats(8000)
    feed(stats, [s for s in kept if s <= 2999])
    first = stats.report_block(1, None, 60.0)
    feed(stats, [s for s in kept if s > 2999])
    second = stats.report_block(1, None, 120.0)
    # Independently: the base is sequence 1 (0 was on probation); every report covers up to its highest.
    got_1 = sum(1 for s in kept if 1 <= s <= 2999)
    got_2 = sum(1 for s in kept if s > 2999)
    lost_1, lost_2 = 2999 - got_1, 3000 - got_2
    assert first.fraction_lost == (lost_1 << 8) // 2999 and first.packets_lost == lost_1
    assert second.fraction_lost == (lost_2 << 8) // 3000 and second.packets_lost == lost_1 + lost_2
    assert 20 <= second.fraction_lost <= 31  # about 10 %
    assert stats.fraction_lost_percent == pytest.approx(second.fraction_lost * 100 / 256)
    assert second.highest_sequence == 5999 and stats.expected == 5999


def test_reordering_is_not_loss() -> None:
    sequences = [0, 1, 2]
    for s in range(3, 1001, 2):
        sequences += [s + 1, s]  # every pair swapped
    sequences += [1010, 1005, 1011]  # 1005 arrives five packets late; 1002-1009 stay lost but 1005
    stats = ReceptionStats(8000)
    assert all(feed(stats, sequences)[1:])
    assert stats.expected == 1011 and stats.cumulative_lost == 1011 - (len(sequences) - 1) == 8
    assert stats.report_block(1, None, 0).fraction_lost == (8 << 8) // 1011


def test_duplicates_make_loss_negative() -> None:
    sequences = []
    for s in range(1000):
        sequences += [s, s] if s % 10 == 5 else [s]
    stats = ReceptionStats(8000)
    feed(stats, sequences)
    block = stats.report_block(1, None, 0)
    assert (stats.packets, stats.expected, stats.cumulative_lost) == (1099, 999, -100)
    assert block.packets_lost == -100 and block.fraction_lost == 0
    assert ReceptionReport.parse(block.serialize()) == block


def test_sequence_and_timestamp_wrap() -> None:
    stats = ReceptionStats(8000)
    sequences = [s for s in range(65000, 67000) if s != 65600]  # one loss after the wrap, at 64
    valid = feed(stats, sequences, first=65000, ts0=0xFFFFFFFF - 160 * 1000)  # RTP timestamps wrap too
    assert all(valid[1:])
    block = stats.report_block(1, None, 0)
    assert block.highest_sequence == (1 << 16) | (66999 - 65536) and stats.expected == 1999
    assert block.packets_lost == 1 and block.jitter == 0


def test_constant_jitter_pattern() -> None:
    stats = ReceptionStats(8000)
    count = 400
    for i in range(count):
        stats.received(i, i * 160, i * 0.02 + (0.01 if i % 2 == 0 else -0.01))
    # Each packet after the first valid one (sequence 1) has |D| = 20 ms = 160 units from the previous one,
    # so J_n = J_{n-1} + (160 - J_{n-1}) / 16 from J = 0: J = 160 * (1 - (15/16) ** n) after n updates.
    expected = 160 * (1 - (15 / 16) ** (count - 2))
    block = stats.report_block(1, None, 0)
    assert block.jitter == int(expected) == 159 and stats.jitter_ms == pytest.approx(expected / 8, rel=1e-9)
    assert stats.jitter_ms == pytest.approx(20, rel=1e-6)  # steady state: the alternation's full swing


def test_jitter_uses_the_clock_rate() -> None:
    stats = ReceptionStats(48000)  # Opus: 960 units per 20 ms
    for i in range(400):
        stats.received(i, i * 960, i * 0.02 + (0.005 if i % 2 == 0 else 0))
    assert stats.jitter_ms == pytest.approx(5, rel=1e-6)
    assert stats.report_block(1, None, 0).jitter == 239  # 5 ms at 48 kHz is 240 units, approached from below


def test_restart_after_a_large_jump_resyncs() -> None:
    stats = ReceptionStats(8000)
    feed(stats, list(range(1000)))
    stats.report_block(1, None, 0)
    assert stats.received(40000, 0, 30.0) is False  # a jump beyond MAX_DROPOUT: maybe a stray
    assert stats.received(40001, 160, 30.02) is True  # it continues: the source restarted (A.1 bad_seq)
    assert (stats.packets, stats.expected, stats.extended_highest) == (1, 1, 40001)
    for i in range(2, 1000):
        assert stats.received(40000 + i, i * 160, 30 + i * 0.02)
    block = stats.report_block(1, None, 0)
    assert (block.packets_lost, block.fraction_lost, block.highest_sequence) == (0, 0, 40999)
    assert block.jitter == 0  # the restart's new timestamp base is not jitter


def test_stray_and_too_late_packets_are_invalid() -> None:
    stats = ReceptionStats(8000)
    feed(stats, list(range(500)))
    assert stats.received(30000, 0, 10.0) is False  # a stray far ahead
    assert stats.received(500 - 1 - 150, 0, 10.0) is False  # further behind than MAX_MISORDER
    assert feed(stats, list(range(500, 1000))) == [True] * 500
    assert (stats.packets, stats.expected, stats.cumulative_lost) == (999, 999, 0)


def test_gap_within_dropout_is_loss() -> None:
    stats = ReceptionStats(8000)
    feed(stats, list(range(100)) + list(range(2100, 2200)))
    block = stats.report_block(1, None, 0)
    assert block.packets_lost == 2000 and block.fraction_lost == (2000 << 8) // 2199


def test_probation_restarts_on_a_gap() -> None:
    stats = ReceptionStats(8000)
    assert [stats.received(s, 0, 0) for s in (10, 12, 13, 14)] == [False, False, True, True]
    assert (stats.packets, stats.expected) == (2, 2)
    wrapping = ReceptionStats(8000)
    assert [wrapping.received(s, 0, 0) for s in (65535, 0)] == [False, True]  # across the wrap


def test_lsr_and_dlsr_from_the_last_sender_report() -> None:
    stats = ReceptionStats(8000)
    feed(stats, [0, 1, 2])
    block = stats.report_block(1, (0x4C6E8000, 100.0), now=101.5)
    assert (block.lsr, block.dlsr) == (0x4C6E8000, 98304)  # 1.5 s in 1/65536 s


def test_received_cost_per_call(capsys: pytest.CaptureFixture[str]) -> None:
    stats = ReceptionStats(8000)
    count = 200_000
    packets = [(i & 0xFFFF, i * 160 & 0xFFFFFFFF, i * 0.02) for i in range(count)]
    received = stats.received
    start = time.perf_counter()
    for sequence, timestamp, arrival in packets:
        received(sequence, timestamp, arrival)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nReceptionStats.received: {elapsed / count * 1e9:.0f} ns per call (loop included)")
    assert stats.packets == count - 1
