"""RTP packets (RFC 3550 section 5.1): the fixed header, CSRCs, header extension and padding."""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHII")
VERSION = 2


class RtpError(ValueError):
    """Bytes that are not an RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined id, data: a multiple of 4 bytes)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < HEADER.size:
            raise RtpError(f"{len(data)} bytes is shorter than an RTP header")
        first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
        if first >> 6 != VERSION:
            raise RtpError(f"RTP version {first >> 6}, not 2")
        offset = HEADER.size + 4 * (first & 0x0F)
        if len(data) < offset:
            raise RtpError("CSRC list beyond the end of the packet")
        csrc = struct.unpack_from(f"!{first & 0x0F}I", data, HEADER.size)
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpError("header extension beyond the end of the packet")
            profile, words = struct.unpack_from("!HH", data, offset)
            extension = (profile, bytes(data[offset + 4:offset + 4 + 4 * words]))
            offset += 4 + 4 * words
        end = len(data)
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise RtpError(f"padding of {padding} bytes does not fit the packet")
            end -= padding
        if offset > end:
            raise RtpError("header longer than the packet")
        return cls(second & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:end]), bool(second & 0x80), csrc,
                   extension)

    def serialize(self) -> bytes:
        first = VERSION << 6 | (0x10 if self.extension is not None else 0) | len(self.csrc)
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        parts += [struct.pack("!I", c) for c in self.csrc]
        if self.extension is not None:
            profile, data = self.extension
            parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
        parts.append(self.payload)
        return b"".join(parts)
