"""A minimal AMQP 0-9-1 client speaking raw frames, for tests that must send
bytes no well-behaved client library would send."""

import os
import socket
import struct
import time

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
HEADER = b"AMQP\x00\x00\x09\x01"


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
    for k, v in d.items():
        out += shortstr(k)
        if isinstance(v, bool):
            out += b"t" + (b"\x01" if v else b"\x00")
        elif isinstance(v, int):
            out += b"I" + struct.pack(">i", v)
        elif isinstance(v, dict):
            out += b"F" + table(v)
        else:
            out += b"S" + longstr(v)
    return struct.pack(">I", len(out)) + out


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def method(channel, class_id, method_id, args=b""):
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


class Conn:
    def __init__(self, timeout=5.0):
        self.s = socket.create_connection((HOST, PORT), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv_frame(self, timeout=5.0):
        """Next frame as (type, channel, payload); None when the socket closed."""
        deadline = time.time() + timeout
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7:7 + size]
                    assert self.buf[7 + size] == 0xCE, "bad frame end from broker"
                    self.buf = self.buf[8 + size:]
                    return ftype, ch, payload
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no frame from broker")
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.buf += data

    def recv_method(self, timeout=5.0):
        """Next method frame as (channel, class, method, args), skipping heartbeats."""
        while True:
            f = self.recv_frame(timeout)
            if f is None:
                return None
            ftype, ch, payload = f
            if ftype == 8:
                continue
            if ftype != 1:
                return ("content", ch, ftype, payload)
            cid, mid = struct.unpack(">HH", payload[:4])
            return ch, cid, mid, payload[4:]

    def expect(self, class_id, method_id, channel=None):
        m = self.recv_method()
        assert m is not None, "connection closed, expected %d.%d" % (class_id, method_id)
        assert (m[1], m[2]) == (class_id, method_id), "expected %d.%d, got %r" % (
            class_id, method_id, m[:3] + (m[3][:80],))
        if channel is not None:
            assert m[0] == channel, "expected channel %d, got %d" % (channel, m[0])
        return m[3]

    def closed(self, timeout=5.0):
        """True when the broker closes the socket (after any frames it sends)."""
        try:
            while True:
                f = self.recv_frame(timeout)
                if f is None:
                    return True
        except TimeoutError:
            return False

    def handshake(self, heartbeat=0, frame_max=131072, channel_max=2047, vhost="/",
                  user="guest", password="guest", caps=None):
        self.send(HEADER)
        self.expect(10, 10)  # start
        props = {"product": "warren-rawtest",
                 "capabilities": caps if caps is not None else
                 {"authentication_failure_close": True, "connection.blocked": True,
                  "consumer_cancel_notify": True, "publisher_confirms": True}}
        resp = b"\x00" + user.encode() + b"\x00" + password.encode()
        self.send(method(0, 10, 11, table(props) + shortstr("PLAIN") + longstr(resp) +
                         shortstr("en_US")))
        m = self.recv_method()
        if m is None or m[1:3] != (10, 30):
            return m  # refused: connection.close (or nothing) instead of tune
        self.tune = struct.unpack(">HIH", m[3][:8])
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat)))
        self.send(method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
        return self.recv_method()

    def open_channel(self, ch=1):
        self.send(method(ch, 20, 10, shortstr("")))
        self.expect(20, 11, ch)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def parse_close(args):
    """(reply_code, reply_text, class_id, method_id) of connection/channel.close."""
    code = struct.unpack(">H", args[:2])[0]
    n = args[2]
    text = args[3:3 + n].decode()
    cid, mid = struct.unpack(">HH", args[3 + n:7 + n])
    return code, text, cid, mid


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        try:
            fn()
        except Exception as e:  # report and go on: every case is independent
            self.failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        else:
            self.passed += 1
            print("ok   %s" % name, flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 else 1
