"""A small blocking AMQP 0-9-1 client for the store's crash and recovery tests.

Why not pika: the crash test needs pipelined publishing with a window of
outstanding confirms, exact knowledge of which frames were sent before a
kill, and precise delivery tags; pika's blocking adapter waits for every
confirm and hides the rest.  One Client is one connection used by one
thread.  Frames that arrive while a synchronous call waits for its reply
(confirms, deliveries) go to the on_confirm / on_deliver callbacks, so
nothing is lost or reordered.

Errors: ChannelClosed (the broker closed a channel: code, text),
ConnectionClosed (connection.close from the broker) and ConnectionLost (the
socket died, e.g. the broker was killed) are the only exceptions a caller
has to expect.
"""

import socket
import struct
import time

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = b"\xce"

# property flag bits of basic's content header
P_CONTENT_TYPE = 1 << 15
P_HEADERS = 1 << 13
P_DELIVERY_MODE = 1 << 12
P_MESSAGE_ID = 1 << 7


class ConnectionLost(Exception):
    pass


class ConnectionClosed(Exception):
    def __init__(self, code, text):
        Exception.__init__(self, "connection closed: %d %s" % (code, text))
        self.code, self.text = code, text


class ChannelClosed(Exception):
    def __init__(self, channel, code, text):
        Exception.__init__(self, "channel %d closed: %d %s" % (channel, code, text))
        self.channel, self.code, self.text = channel, code, text


def shortstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("B", len(s)) + s


def longstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">I", len(s)) + s


def table(d):
    out = b""
    for k, v in (d or {}).items():
        out += shortstr(k)
        if isinstance(v, bool):
            out += b"t" + (b"\x01" if v else b"\x00")
        elif isinstance(v, int):
            out += b"l" + struct.pack(">q", v)
        elif isinstance(v, dict):
            out += b"F" + table(v)
        else:
            out += b"S" + longstr(v)
    return struct.pack(">I", len(out)) + out


def bits(*flags):
    v = 0
    for i, f in enumerate(flags):
        if f:
            v |= 1 << i
    return struct.pack("B", v)


def props(delivery_mode=None, message_id=None, headers=None, content_type=None):
    """Encoded basic properties (flags word and values) for a content header."""
    flags, out = 0, b""
    if content_type is not None:
        flags |= P_CONTENT_TYPE
        out += shortstr(content_type)
    if headers is not None:
        flags |= P_HEADERS
        out += table(headers)
    if delivery_mode is not None:
        flags |= P_DELIVERY_MODE
        out += struct.pack("B", delivery_mode)
    if message_id is not None:
        flags |= P_MESSAGE_ID
        out += shortstr(message_id)
    return struct.pack(">H", flags) + out


class Reader:
    """Cursor over a method's arguments."""

    def __init__(self, data, pos=0):
        self.d, self.p = data, pos

    def u8(self):
        v = self.d[self.p]
        self.p += 1
        return v

    def u16(self):
        v = struct.unpack_from(">H", self.d, self.p)[0]
        self.p += 2
        return v

    def u32(self):
        v = struct.unpack_from(">I", self.d, self.p)[0]
        self.p += 4
        return v

    def u64(self):
        v = struct.unpack_from(">Q", self.d, self.p)[0]
        self.p += 8
        return v

    def shortstr(self):
        n = self.u8()
        v = bytes(self.d[self.p:self.p + n])
        self.p += n
        return v

    def longstr(self):
        n = self.u32()
        v = bytes(self.d[self.p:self.p + n])
        self.p += n
        return v


def decode_props(data):
    """The properties this suite uses: delivery_mode, message_id, raw headers."""
    r = Reader(data)
    flags = r.u16()
    out = {}
    # order of basic's properties; each entry: (flag bit, name, reader)
    for bit, name, kind in ((15, "content_type", "s"), (14, "content_encoding", "s"),
                            (13, "headers", "t"), (12, "delivery_mode", "b"),
                            (11, "priority", "b"), (10, "correlation_id", "s"),
                            (9, "reply_to", "s"), (8, "expiration", "s"),
                            (7, "message_id", "s"), (6, "timestamp", "q"),
                            (5, "type", "s"), (4, "user_id", "s"),
                            (3, "app_id", "s"), (2, "cluster_id", "s")):
        if not flags & (1 << bit):
            continue
        if kind == "s":
            out[name] = r.shortstr().decode()
        elif kind == "t":
            out[name] = r.longstr()
        elif kind == "b":
            out[name] = r.u8()
        else:
            out[name] = r.u64()
    return out


class Client:
    def __init__(self, host, port, vhost="/", user="guest", password="guest",
                 timeout=30.0, name=None):
        self.timeout = timeout
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnectionLost("connect: %s" % e)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.out = []
        self.on_confirm = None   # f(channel, tag, multiple, ack)
        self.on_deliver = None   # f(channel, tag, redelivered, exchange, rk, props, body)
        self.on_return = None    # f(channel, code, text, exchange, rk)
        self.content = {}        # channel -> [method tuple, props, size, chunks]
        self.replies = {}        # channel -> list of (class, method, Reader) not yet claimed
        self.closed_channels = {}
        self.frame_max = 131072
        self._send(b"AMQP\x00\x00\x09\x01")
        self._expect(0, 10, 10)  # connection.start
        cp = {"product": "warren-crash-test"}
        if name:
            cp["connection_name"] = name
        self._send(self._method(0, 10, 11, table(cp) + shortstr("PLAIN") +
                                longstr(b"\0" + user.encode() + b"\0" + password.encode()) +
                                shortstr("en_US")))
        r = self._expect(0, 10, 30)  # connection.tune
        channel_max, frame_max = r.u16(), r.u32()
        self.frame_max = min(frame_max or 131072, 131072)
        self._send(self._method(0, 10, 31, struct.pack(">HIH", channel_max, self.frame_max, 0)))
        self._send(self._method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
        self._expect(0, 10, 41)

    # ---- frames ----------------------------------------------------------

    @staticmethod
    def _frame(ftype, channel, payload):
        return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END

    def _method(self, channel, cls, mid, args=b""):
        return self._frame(FRAME_METHOD, channel, struct.pack(">HH", cls, mid) + args)

    def _send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ConnectionLost("send: %s" % e)

    def queue_out(self, data):
        self.out.append(data)

    def flush(self):
        if self.out:
            data = b"".join(self.out)
            self.out = []
            self._send(data)

    def _read_frame(self, timeout):
        """(type, channel, payload memoryview) or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            avail = len(self.buf) - self.pos
            if avail >= 7:
                ftype, ch, size = struct.unpack_from(">BHI", self.buf, self.pos)
                if avail >= 8 + size:
                    start = self.pos + 7
                    payload = bytes(self.buf[start:start + size])
                    if self.buf[start + size] != 0xCE:
                        raise ConnectionLost("bad frame end")
                    self.pos = start + size + 1
                    if self.pos > (1 << 20):
                        del self.buf[:self.pos]
                        self.pos = 0
                    return ftype, ch, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 18)
            except socket.timeout:
                return None
            except OSError as e:
                raise ConnectionLost("recv: %s" % e)
            if not data:
                raise ConnectionLost("the broker closed the socket")
            self.buf += data

    def _dispatch(self, ftype, ch, payload):
        """Handle one frame; returns (class, method, Reader) for sync replies."""
        if ftype == FRAME_HEARTBEAT:
            return None
        if ftype == FRAME_METHOD:
            cls, mid = struct.unpack_from(">HH", payload, 0)
            r = Reader(payload, 4)
            if (cls, mid) == (10, 50):
                code, text = r.u16(), r.shortstr().decode(errors="replace")
                try:
                    self._send(self._method(0, 10, 51))
                except ConnectionLost:
                    pass
                raise ConnectionClosed(code, text)
            if (cls, mid) == (20, 40):
                code, text = r.u16(), r.shortstr().decode(errors="replace")
                self._send(self._method(ch, 20, 41))
                self.closed_channels[ch] = (code, text)
                raise ChannelClosed(ch, code, text)
            if (cls, mid) == (60, 80) or (cls, mid) == (60, 120):
                tag = r.u64()
                flag = r.u8()
                if self.on_confirm:
                    self.on_confirm(ch, tag, bool(flag & 1), mid == 80)
                return None
            if (cls, mid) == (60, 60):
                ctag = r.shortstr()
                tag = r.u64()
                redelivered = bool(r.u8() & 1)
                exchange, rk = r.shortstr(), r.shortstr()
                self.content[ch] = [("deliver", tag, redelivered, exchange, rk, ctag),
                                    None, 0, []]
                return None
            if (cls, mid) == (60, 71):
                tag = r.u64()
                redelivered = bool(r.u8() & 1)
                exchange, rk = r.shortstr(), r.shortstr()
                r.u32()
                self.content[ch] = [("get", tag, redelivered, exchange, rk, b""), None, 0, []]
                return None
            if (cls, mid) == (60, 50):
                code, text = r.u16(), r.shortstr()
                exchange, rk = r.shortstr(), r.shortstr()
                self.content[ch] = [("return", code, text, exchange, rk, b""), None, 0, []]
                return None
            return cls, mid, r
        if ftype == FRAME_HEADER:
            c = self.content.get(ch)
            if c is None:
                raise ConnectionLost("content header without a method on channel %d" % ch)
            size = struct.unpack_from(">Q", payload, 4)[0]
            c[1] = bytes(payload[12:])
            c[2] = size
            if size == 0:
                return self._content_done(ch)
            return None
        if ftype == FRAME_BODY:
            c = self.content.get(ch)
            if c is None or c[1] is None:
                raise ConnectionLost("body frame without a header on channel %d" % ch)
            c[3].append(payload)
            c[2] -= len(payload)
            if c[2] <= 0:
                return self._content_done(ch)
            return None
        raise ConnectionLost("unexpected frame type %d" % ftype)

    def _content_done(self, ch):
        m, p, _, chunks = self.content.pop(ch)
        body = b"".join(chunks)
        if m[0] == "deliver":
            if self.on_deliver:
                self.on_deliver(ch, m[1], m[2], m[3], m[4], p, body)
            return None
        if m[0] == "get":
            return 60, 71, (m[1], m[2], m[3], m[4], p, body)
        if self.on_return:
            self.on_return(ch, m[1], m[2], m[3], m[4])
        return None

    def _expect(self, ch, cls, mid, timeout=None):
        """Wait for method (cls, mid) on channel ch, dispatching the rest."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            q = self.replies.get(ch)
            if q:
                for i, (c, m, r) in enumerate(q):
                    if (c, m) == (cls, mid) or (cls == 60 and mid == 71 and (c, m) == (60, 72)):
                        del q[i]
                        return r if (c, m) != (60, 72) else None
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionLost("timed out waiting for %d.%d on channel %d" % (cls, mid, ch))
            f = self._read_frame(left)
            if f is None:
                continue
            got = self._dispatch(*f)
            if got is not None:
                self.replies.setdefault(f[1], []).append(got)

    def poll(self, timeout):
        """Read and dispatch frames for up to timeout seconds (at least one if ready)."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            f = self._read_frame(max(0.0, deadline - time.monotonic()) if n == 0 else 0.0)
            if f is None:
                return n
            n += 1
            got = self._dispatch(*f)
            if got is not None:
                self.replies.setdefault(f[1], []).append(got)

    def call(self, ch, cls, mid, args, reply_mid):
        self.flush()
        self._send(self._method(ch, cls, mid, args))
        return self._expect(ch, cls, reply_mid)

    # ---- methods ---------------------------------------------------------

    def channel_open(self, ch):
        self.call(ch, 20, 10, shortstr(""), 11)

    def channel_close(self, ch):
        self.call(ch, 20, 40,
                  struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0), 41)

    def confirm_select(self, ch):
        self.call(ch, 85, 10, b"\x00", 11)

    def tx_select(self, ch):
        self.call(ch, 90, 10, b"", 11)

    def tx_commit(self, ch):
        self.call(ch, 90, 20, b"", 21)

    def exchange_declare(self, ch, name, type_="direct", durable=True, auto_delete=False,
                         passive=False, internal=False, arguments=None):
        self.call(ch, 40, 10, struct.pack(">H", 0) + shortstr(name) + shortstr(type_) +
                  bits(passive, durable, auto_delete, internal, False) + table(arguments), 11)

    def exchange_delete(self, ch, name, if_unused=False):
        self.call(ch, 40, 20, struct.pack(">H", 0) + shortstr(name) + bits(if_unused, False), 21)

    def exchange_bind(self, ch, destination, source, routing_key, arguments=None):
        self.call(ch, 40, 30, struct.pack(">H", 0) + shortstr(destination) + shortstr(source) +
                  shortstr(routing_key) + b"\x00" + table(arguments), 31)

    def exchange_unbind(self, ch, destination, source, routing_key, arguments=None):
        self.call(ch, 40, 40, struct.pack(">H", 0) + shortstr(destination) + shortstr(source) +
                  shortstr(routing_key) + b"\x00" + table(arguments), 51)

    def queue_declare(self, ch, name, durable=True, exclusive=False, auto_delete=False,
                      passive=False, arguments=None):
        """(name, message_count, consumer_count)"""
        r = self.call(ch, 50, 10, struct.pack(">H", 0) + shortstr(name) +
                      bits(passive, durable, exclusive, auto_delete, False) + table(arguments), 11)
        return r.shortstr().decode(), r.u32(), r.u32()

    def queue_bind(self, ch, queue, exchange, routing_key, arguments=None):
        self.call(ch, 50, 20, struct.pack(">H", 0) + shortstr(queue) + shortstr(exchange) +
                  shortstr(routing_key) + b"\x00" + table(arguments), 21)

    def queue_unbind(self, ch, queue, exchange, routing_key, arguments=None):
        self.call(ch, 50, 50, struct.pack(">H", 0) + shortstr(queue) + shortstr(exchange) +
                  shortstr(routing_key) + table(arguments), 51)

    def queue_purge(self, ch, queue):
        return self.call(ch, 50, 30, struct.pack(">H", 0) + shortstr(queue) + b"\x00", 31).u32()

    def queue_delete(self, ch, queue, if_unused=False, if_empty=False):
        return self.call(ch, 50, 40, struct.pack(">H", 0) + shortstr(queue) +
                         bits(if_unused, if_empty, False), 41).u32()

    def basic_qos(self, ch, prefetch_count, global_=False):
        self.call(ch, 60, 10, struct.pack(">IH", 0, prefetch_count) + bits(global_), 11)

    def basic_consume(self, ch, queue, tag="", no_ack=False, exclusive=False):
        r = self.call(ch, 60, 20, struct.pack(">H", 0) + shortstr(queue) + shortstr(tag) +
                      bits(False, no_ack, exclusive, False) + table({}), 21)
        return r.shortstr().decode()

    def basic_cancel(self, ch, tag):
        self.call(ch, 60, 30, shortstr(tag) + b"\x00", 31)

    def basic_get(self, ch, queue, no_ack=False):
        """(tag, redelivered, exchange, rk, props, body) or None when empty."""
        self.flush()
        self._send(self._method(ch, 60, 70, struct.pack(">H", 0) + shortstr(queue) +
                                bits(no_ack)))
        return self._expect(ch, 60, 71)

    def publish(self, ch, exchange, routing_key, body, properties, mandatory=False):
        """Queue a publish (sent by flush() or the next call)."""
        fm = self.frame_max - 8
        parts = [self._method(ch, 60, 40, struct.pack(">H", 0) + shortstr(exchange) +
                              shortstr(routing_key) + bits(mandatory, False)),
                 self._frame(FRAME_HEADER, ch,
                             struct.pack(">HHQ", 60, 0, len(body)) + properties)]
        for off in range(0, len(body), fm):
            parts.append(self._frame(FRAME_BODY, ch, body[off:off + fm]))
        self.out.append(b"".join(parts))

    def ack(self, ch, tag, multiple=False):
        self.out.append(self._method(ch, 60, 80, struct.pack(">Q", tag) + bits(multiple)))

    def nack(self, ch, tag, multiple=False, requeue=True):
        self.out.append(self._method(ch, 60, 120, struct.pack(">Q", tag) + bits(multiple, requeue)))

    def close(self):
        try:
            self.flush()
            self._send(self._method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") +
                                    struct.pack(">HH", 0, 0)))
            self._expect(0, 10, 51, timeout=5)
        except (ConnectionLost, ConnectionClosed, ChannelClosed):
            pass
        finally:
            self.abort()

    def abort(self):
        try:
            self.sock.close()
        except OSError:
            pass
