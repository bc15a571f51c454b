"""The WebSocket protocol engine of a session: websockets' sans-I/O server protocol, tuned.

`SessionProtocol` is the websockets library's `ServerProtocol`, which keeps the
connection's state, control frames, fragmentation, permessage-deflate, size limits and the
closing handshake. Two narrow shortcuts sit in front of it for the frames most traffic
consists of, because its generator-based parser and frame serialisation cost more per
message than the rest of the server together:

- `take_data_frames` reads whole (FIN) text/binary frames at the start of a chunk
  directly: masked as a client's must be, no RSV bit but the compression bit, not over
  the size limit, no 64-bit length, and the library's parser between frames. Unmasking
  is the library's own C `apply_mask`. At the first other frame it steps aside and the
  library parses the rest. For the frames it takes the library would change no state
  beyond what the extension keeps: outside a fragmented message such a frame only
  produces an event.
- `data_frame` builds an outgoing whole text/binary frame's head directly.

Compressed frames on both paths use the zlib objects of the negotiated permessage-deflate
extension (`PerMessageDeflate.decoder` / `.encoder`) directly, with the extension's own
parameters and rules (RFC 7692: context takeover or not, window bits, the 0x00 0x00 0xff
0xff tail), so the library's path and ours share one compression context. The library's
`decode`/`encode` build two `Frame` dataclasses per message around the same two zlib
calls, which costs more than the zlib work for a small message.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from types import GeneratorType
from typing import Any, cast

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CLOSE, CloseCode, Frame
from websockets.protocol import OPEN, Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.typing import BytesLike

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the wheel ships the C extension
    from websockets.utils import apply_mask

# First byte of a whole data frame: FIN, RSV1 when deflated, the opcode.
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
_FIN_DEFLATED_TEXT = 0xC1
_FIN_DEFLATED_BINARY = 0xC2
# The empty stored block a sync flush ends with; RFC 7692 7.2.1 removes it from the frame
# and 7.2.2 has the receiver put it back.
_FLUSH_TAIL = b"\x00\x00\xff\xff"
# The library's frame parser (a generator the protocol's parser delegates to once open),
# and what it waits in between frames: reader.at_eof().
_PARSE_FRAMES = Protocol.parse.__code__
_BETWEEN_FRAMES = StreamReader.at_eof.__code__
# Server frames are never masked: a short one's head is that byte and the length.
_SHORT_HEADS = {
    first: [bytes((first, n)) for n in range(126)]
    for first in (_FIN_TEXT, _FIN_BINARY, _FIN_DEFLATED_TEXT, _FIN_DEFLATED_BINARY)
}


class SessionProtocol(ServerProtocol):
    """websockets' server protocol with fast paths for whole data frames (see module doc)."""

    deflate: PerMessageDeflate | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The generator running Protocol.parse inside the library's parser; None (the fast
        # path off) should a version of the library parse otherwise.
        frames: Any = self.parser
        while frames is not None and frames.gi_code is not _PARSE_FRAMES:
            frames = frames.gi_yieldfrom
        self.frames: GeneratorType[None, None, None] | None = frames

    def use_extensions(self, extensions: list[Extension]) -> None:
        """Apply the negotiated extensions: permessage-deflate is the only one offered."""
        if any(type(ext) is not PerMessageDeflate for ext in extensions) or len(extensions) > 1:
            raise ValueError(f"unexpected WebSocket extensions {extensions!r}")
        self.extensions = extensions
        self.deflate = cast(PerMessageDeflate, extensions[0]) if extensions else None

    def recv_frame(self, frame: Frame) -> None:
        # RFC 6455 section 5.4 lets control frames come between the fragments of a
        # message; the library treats a close frame there as a protocol error (1002).
        # It closes cleanly here, the unfinished message dropped (Autobahn case 7.1.5).
        if frame.opcode is CLOSE:
            self.current_size = None
        super().recv_frame(frame)

    def take_data_frames(self, data: bytes, on_message: Callable[[bool, bytes], bool]) -> int:
        """Hand the whole data frames that start `data` to `on_message(is_text, payload)`.

        Returns the offset of the first byte not consumed, for `receive_data`. Stops after
        a message for which `on_message` returns False (the session stopped reading). A
        frame that fails to inflate fails the connection as the library would (1002,
        1009); `parser_exc` tells.
        """
        # _state, not the `state` property: this runs once per read
        if self.current_size is not None or self._state is not OPEN:
            return 0
        # The library's parser must be between frames: waiting in the reader's at_eof()
        # for a new frame's first byte. Its buffer can be empty while it is half-way
        # through a frame (it took the head and waits for the mask or the payload).
        frames = self.frames
        if frames is None:
            return 0
        waiting: Any = frames.gi_yieldfrom
        if waiting is None or waiting.gi_code is not _BETWEEN_FRAMES:
            return 0
        deflate = self.deflate
        limit = self.max_message_size
        end = len(data)
        pos = 0
        while end - pos >= 6:
            head1 = data[pos]
            head2 = data[pos + 1]
            if head1 == _FIN_TEXT or head1 == _FIN_BINARY:
                deflated = False
            elif deflate is not None and (head1 == _FIN_DEFLATED_TEXT or head1 == _FIN_DEFLATED_BINARY):
                deflated = True
            else:
                break
            if head2 < 0x80:
                break  # unmasked: the library fails the connection
            length = head2 & 0x7F
            if length < 126:
                start = pos + 6
            elif length == 126:
                start = pos + 8
                if start > end:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            else:
                break
            stop = start + length
            if stop > end or (limit is not None and length > limit):
                break
            payload = apply_mask(data[start:stop], data[start - 4 : start])
            pos = stop
            text = head1 & 0x0F == 1
            if deflated:
                assert deflate is not None
                # as PerMessageDeflate.decode: put the flush tail back (RFC 7692 7.2.2),
                # in one call on a copy below 2 KiB, where that beats a second call
                if deflate.remote_no_context_takeover:
                    decoder = deflate.decoder = zlib.decompressobj(wbits=-deflate.remote_max_window_bits)
                else:
                    decoder = deflate.decoder
                try:
                    if length < 2044:
                        payload = decoder.decompress(payload + _FLUSH_TAIL, limit or 0)
                        if decoder.unconsumed_tail:  # past the limit: a zip bomb stops here
                            raise PayloadTooBig(None, limit)
                    else:
                        payload = decoder.decompress(payload, limit or 0)
                        # the tail may flush bytes held back by the limit: one more is too many
                        if decoder.unconsumed_tail or decoder.decompress(_FLUSH_TAIL, 1):
                            raise PayloadTooBig(None, limit)
                except zlib.error:
                    self._fail_parse(CloseCode.PROTOCOL_ERROR, ProtocolError("decompression failed"))
                    return end
                except PayloadTooBig as exc:
                    exc.set_current_size(None)
                    self._fail_parse(CloseCode.MESSAGE_TOO_BIG, exc)
                    return end
            if not on_message(text, payload):
                break
        return pos

    def _fail_parse(self, code: int, exc: Exception) -> None:
        # what the library's parse() does with the same errors
        self.fail(code, str(exc))
        self.parser_exc = exc

    def data_frame(self, text: bool, message: bytes) -> bytes:
        """The bytes of one whole text/binary message frame, with queued control frames.

        Raises the library's `InvalidState` once the connection is closing or closed.
        """
        if self._state is not OPEN or self.expect_continuation_frame:
            if text:
                self.send_text(message)
            else:
                self.send_binary(message)
            writes = self.data_to_send()
            return writes[0] if len(writes) == 1 else b"".join(writes)
        deflate = self.deflate
        payload: BytesLike
        if deflate is None:
            payload = message
            first = _FIN_TEXT if text else _FIN_BINARY
        else:
            if deflate.local_no_context_takeover:
                encoder = deflate.encoder = zlib.compressobj(
                    wbits=-deflate.local_max_window_bits, **deflate.compress_settings
                )
            else:
                encoder = deflate.encoder
            payload = encoder.compress(message) + encoder.flush(zlib.Z_SYNC_FLUSH)
            # without the flush tail (RFC 7692 7.2.1); a view rather than a copy once large
            payload = payload[:-4] if len(payload) < 2048 else memoryview(payload)[:-4]
            first = _FIN_DEFLATED_TEXT if text else _FIN_DEFLATED_BINARY
        n = len(payload)
        if n < 126:
            head = _SHORT_HEADS[first][n]
        elif n < 65536:
            head = bytes((first, 126, n >> 8, n & 0xFF))
        else:
            head = bytes((first, 127)) + n.to_bytes(8, "big")
        pending = self.writes
        if pending:  # control frames (pongs) queued by the parser go first
            self.writes = []
            return b"".join((*pending, head, payload))
        return b"".join((head, payload))
