#!/usr/bin/env python3
"""Record the exact bytes real AMQP clients send, as golden test vectors.

A tiny fake server (python3 stdlib) plays just enough of a broker's side of
AMQP 0-9-1 for one connection: connection.start (mechanisms "PLAIN
AMQPLAIN"), connection.tune (channel-max 2047, frame-max 131072, heartbeat
60), connection.open-ok, channel.open-ok, then it takes a basic.publish with
its content header and body frames, and answers channel.close and
connection.close.  Every frame the client sends is written, exactly as
received, to OUTDIR/<client>_<what>.bin:

  protocol_header  the 8-byte "AMQP\\0\\0\\x09\\x01" greeting
  start_ok tune_ok connection_open channel_open channel_close
  connection_close one method frame each
  publish          the basic.publish method frame, the content header frame
                   and the body frame(s), concatenated

Clients: python3-pika (BlockingConnection; content_type, delivery_mode 2,
headers of several field types, correlation_id, body "hello") and amqp-tools
(amqp-publish).  tests/unit/golden_test.c decodes these files with Warren's
codec and re-encodes them byte for byte, so rerun this script only when a
client's output is meant to change, and update the test to match.

Usage: tests/interop/capture_golden.py [--out DIR] [--client pika|amqptools]
"""

import argparse
import os
import socket
import struct
import subprocess
import sys
import threading

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(TOP, "tests", "unit", "data", "golden")

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE

# (class, method) -> name of the file holding what the client sent.
CLIENT_METHODS = {
    (10, 11): "start_ok",
    (10, 31): "tune_ok",
    (10, 40): "connection_open",
    (10, 50): "connection_close",
    (20, 10): "channel_open",
    (20, 40): "channel_close",
    (60, 40): "publish",
}

CHANNEL_MAX, FRAME_MAX, HEARTBEAT = 2047, 131072, 60

PIKA_CLIENT = r"""
import sys
import pika
port = int(sys.argv[1])
params = pika.ConnectionParameters(
    host="127.0.0.1", port=port,
    credentials=pika.PlainCredentials("guest", "guest"))
conn = pika.BlockingConnection(params)
ch = conn.channel()
props = pika.BasicProperties(
    content_type="text/plain",
    delivery_mode=2,
    correlation_id="corr-42",
    headers={
        "x-str": "value",
        "x-int": 42,
        "x-neg": -7,
        "x-big": 1 << 40,
        "x-bool": True,
        "x-nested": {"inner": "yes"},
        "x-list": [1, "two"],
    })
ch.basic_publish(exchange="amq.direct", routing_key="golden.key",
                 body=b"hello", properties=props)
conn.close()
"""


def shortstr(s):
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def longstr(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def table(items):
    """Encode a field table from (key, value) pairs: str, bool or dict."""
    out = b""
    for key, value in items:
        out += shortstr(key)
        if isinstance(value, bool):
            out += b"t" + struct.pack(">B", int(value))
        elif isinstance(value, str):
            out += b"S" + longstr(value)
        elif isinstance(value, list):
            out += b"F" + table(value)
        else:
            raise TypeError(value)
    return struct.pack(">I", len(out)) + out


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([FRAME_END])


def method(channel, cls, mth, args=b""):
    return frame(FRAME_METHOD, channel, struct.pack(">HH", cls, mth) + args)


def connection_start():
    props = table([
        ("product", "warren-golden-capture"),
        ("version", "0.0"),
        ("capabilities", [
            ("publisher_confirms", True),
            ("exchange_exchange_bindings", True),
            ("basic.nack", True),
            ("consumer_cancel_notify", True),
            ("connection.blocked", True),
            ("authentication_failure_close", True),
        ]),
    ])
    args = struct.pack(">BB", 0, 9) + props + longstr("PLAIN AMQPLAIN") + longstr("en_US")
    return method(0, 10, 10, args)


class Conn:
    def __init__(self, sock):
        self.sock = sock

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("client closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def read_frame(self):
        head = self.read_exact(7)
        ftype, channel, size = struct.unpack(">BHI", head)
        rest = self.read_exact(size + 1)
        if rest[-1] != FRAME_END:
            raise ValueError("bad frame-end octet %#x" % rest[-1])
        return ftype, channel, rest[:-1], head + rest

    def read_nonheartbeat(self):
        while True:
            f = self.read_frame()
            if f[0] != FRAME_HEARTBEAT:
                return f


def serve(listener, prefix, outdir, written, errors):
    try:
        sock, _ = listener.accept()
        sock.settimeout(20)
        c = Conn(sock)

        def record(name, raw):
            path = os.path.join(outdir, "%s_%s.bin" % (prefix, name))
            with open(path, "wb") as f:
                f.write(raw)
            written.append(path)

        record("protocol_header", c.read_exact(8))
        sock.sendall(connection_start())
        while True:
            ftype, channel, payload, raw = c.read_nonheartbeat()
            if ftype != FRAME_METHOD:
                raise ValueError("unexpected frame type %d" % ftype)
            key = struct.unpack(">HH", payload[:4])
            name = CLIENT_METHODS.get(key)
            if name is None:
                raise ValueError("unexpected method %d.%d" % key)
            if name == "publish":
                raw += read_content(c, channel)
            record(name, raw)
            if name == "start_ok":
                sock.sendall(method(0, 10, 30, struct.pack(">HIH", CHANNEL_MAX, FRAME_MAX, HEARTBEAT)))
            elif name == "connection_open":
                sock.sendall(method(0, 10, 41, shortstr("")))
            elif name == "channel_open":
                sock.sendall(method(channel, 20, 11, longstr(b"")))
            elif name == "channel_close":
                sock.sendall(method(channel, 20, 41))
            elif name == "connection_close":
                sock.sendall(method(0, 10, 51))
                break
        sock.close()
    except Exception as e:  # reported by the main thread
        errors.append(e)


def read_content(c, channel):
    """The content header and body frames after a basic.publish."""
    ftype, ch, payload, raw = c.read_nonheartbeat()
    if ftype != FRAME_HEADER or ch != channel:
        raise ValueError("expected a content header on channel %d" % channel)
    (body_size,) = struct.unpack(">Q", payload[4:12])
    got = 0
    while got < body_size:
        ftype, ch, body, braw = c.read_nonheartbeat()
        if ftype != FRAME_BODY or ch != channel:
            raise ValueError("expected a body frame on channel %d" % channel)
        got += len(body)
        raw += braw
    return raw


def python_interpreter():
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def client_argv(client, port):
    if client == "pika":
        return [python_interpreter(), "-c", PIKA_CLIENT, str(port)]
    if client == "amqptools":
        return ["amqp-publish", "-u", "amqp://guest:guest@127.0.0.1:%d" % port,
                "-e", "amq.direct", "-r", "golden.key", "-p",
                "-C", "text/plain", "-H", "x-tool: amqp-publish",
                "-b", "hello from amqp-tools"]
    raise ValueError(client)


def capture(client, outdir):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(20)
    port = listener.getsockname()[1]
    written, errors = [], []
    t = threading.Thread(target=serve, args=(listener, client, outdir, written, errors))
    t.start()
    r = subprocess.run(client_argv(client, port), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    t.join(30)
    listener.close()
    if r.returncode != 0:
        errors.append("client exited %d: %s" % (r.returncode, r.stdout.decode(errors="replace")))
    if errors:
        raise SystemExit("capture from %s failed: %s" % (client, "; ".join(map(str, errors))))
    for path in written:
        print("%6d %s" % (os.path.getsize(path), os.path.relpath(path, TOP)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--client", action="append", choices=["pika", "amqptools"],
                    help="client(s) to capture (default: all)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for client in args.client or ["pika", "amqptools"]:
        capture(client, args.out)


if __name__ == "__main__":
    main()
