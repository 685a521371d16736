# broker: none
# timeout: 90
"""Broker shutdown as clients see it.  Each check starts its own broker from
WARREN_BIN, connects, signals it, and asserts: every open connection gets
connection.close 320 CONNECTION_FORCED with RabbitMQ's text, the listener is
gone at once (a new connection is refused while the broker still waits for
close-ok), the broker exits 0 within a few seconds, and its log says so."""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pika
from pika.exceptions import ConnectionClosedByBroker, StreamLostError

import _amqpraw
from _amqpraw import Results, method, parse_close

BIN = os.environ.get("WARREN_BIN")
TMP = os.environ.get("WARREN_TMP", ".")
FORCED_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"

R = Results()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    count = 0

    def __init__(self):
        Broker.count += 1
        self.port = free_port()
        self.dir = os.path.join(TMP, "shutdown-%d" % Broker.count)
        os.makedirs(os.path.join(self.dir, "data"))
        self.log_path = os.path.join(TMP, "shutdown-%d.log" % Broker.count)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [BIN, "--foreground", "--listen", "127.0.0.1:%d" % self.port,
             "--data-dir", os.path.join(self.dir, "data")],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            assert self.proc.poll() is None, "broker exited %r at start" % self.proc.returncode
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                assert time.time() < deadline, "broker not listening after 10 s"
                time.sleep(0.05)

    def pika(self, name):
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.port, connection_attempts=1,
            client_properties={"connection_name": name}))

    def raw(self):
        _amqpraw.PORT = self.port
        c = _amqpraw.Conn()
        m = c.handshake()
        assert m[1:3] == (10, 41), "raw handshake: %r" % (m[:3],)
        return c

    def signal(self, sig=signal.SIGTERM):
        self.signalled = time.time()
        self.proc.send_signal(sig)

    def wait_exit(self, secs):
        """Seconds from the signal until exit; fails unless it was status 0."""
        try:
            rc = self.proc.wait(secs)
        except subprocess.TimeoutExpired:
            raise AssertionError("broker still running %g s after the signal" % secs)
        took = time.time() - self.signalled
        assert rc == 0, "broker exited with status %d" % rc
        return took

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def pika_sees_forced_close(conn):
    deadline = time.time() + 5
    try:
        while time.time() < deadline:
            conn.process_data_events(0.1)
    except ConnectionClosedByBroker as e:
        return e.reply_code, e.reply_text
    except StreamLostError as e:
        raise AssertionError("socket dropped without connection.close: %s" % e)
    raise AssertionError("no connection.close within 5 s of the signal")


def with_broker(fn):
    def run():
        b = Broker()
        try:
            fn(b)
        finally:
            b.cleanup()
    return run


@with_broker
def sigterm_closes_pika_clients(b):
    conns = [b.pika("h7-shut-%d" % i) for i in range(5)]
    chans = []
    for c in conns:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_consume(q, lambda *a: None)
        chans.append(ch)
    b.signal()
    for i, c in enumerate(conns):
        code, text = pika_sees_forced_close(c)
        assert code == 320, "connection %d: reply code %d (%s)" % (i, code, text)
        assert text == FORCED_TEXT, "connection %d: reply text %r" % (i, text)
        assert c.is_closed and chans[i].is_closed
    took = b.wait_exit(5)
    # every client answered close-ok, so no need to wait out a grace period
    assert took < 2.0, "broker took %.1f s to exit after all clients closed" % took
    log = b.log_text()
    for needle in ("SIGTERM: shutting down", "warrend stopped"):
        assert needle in log, "log lacks %r" % needle
    assert refused(b.port), "port still accepting after exit"


@with_broker
def refuses_new_connections_while_stopping(b):
    # A raw client that never answers close-ok keeps the broker in its
    # grace period; meanwhile the listener must already be closed.
    c = b.raw()
    c.open_channel(1)
    b.signal()
    m = c.recv_method()
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    code, text, cid, mid = parse_close(m[3])
    assert (code, text, cid, mid) == (320, FORCED_TEXT, 0, 0), \
        "close was %r" % ((code, text, cid, mid),)
    assert b.proc.poll() is None, "broker gone before the grace period"
    assert refused(b.port), "new connection accepted after SIGTERM"
    assert b.proc.poll() is None, "broker gone before the grace period"
    # methods sent now are ignored; the broker only waits for close-ok
    c.send(method(1, 50, 10, b"\x00\x00" + _amqpraw.shortstr("late") + b"\x00" +
                  struct.pack(">I", 0)))
    took = b.wait_exit(6)
    assert took >= 1.0, "broker did not wait for close-ok (exited after %.2f s)" % took
    assert c.closed(2), "socket not closed when the broker exited"
    c.close()


@with_broker
def close_ok_lets_broker_exit_at_once(b):
    c = b.raw()
    b.signal()
    m = c.recv_method()
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    c.send(method(0, 10, 51))
    assert c.closed(3), "socket not closed after close-ok"
    took = b.wait_exit(5)
    assert took < 1.5, "broker took %.1f s after the only client sent close-ok" % took
    c.close()


@with_broker
def half_open_connections_dropped(b):
    # Clients still in the handshake get no close method, just EOF.
    _amqpraw.PORT = b.port
    idle = socket.create_connection(("127.0.0.1", b.port))           # no header
    started = socket.create_connection(("127.0.0.1", b.port))        # header only
    started.sendall(_amqpraw.HEADER)
    started.settimeout(3)
    data = started.recv(65536)  # connection.start
    assert data[:1] == b"\x01", "no connection.start: %r" % data[:20]
    time.sleep(0.1)
    b.signal()
    for s in (idle, started):
        s.settimeout(3)
        while True:
            d = s.recv(65536)
            if not d:
                break
        s.close()
    took = b.wait_exit(5)
    assert took < 1.5, "broker took %.1f s with only half-open connections" % took


@with_broker
def sigint_same_as_sigterm(b):
    c = b.pika("h7-sigint")
    c.channel()
    b.signal(signal.SIGINT)
    code, text = pika_sees_forced_close(c)
    assert (code, text) == (320, FORCED_TEXT), "got %r" % ((code, text),)
    b.wait_exit(5)
    assert "SIGINT: shutting down" in b.log_text()


@with_broker
def idle_broker_exits_fast(b):
    b.signal()
    took = b.wait_exit(5)
    assert took < 1.5, "idle broker took %.1f s to exit" % took


if not BIN:
    print("WARREN_BIN not set", file=sys.stderr)
    sys.exit(77)

for name, fn in [
    ("sigterm_closes_pika_clients", sigterm_closes_pika_clients),
    ("refuses_new_connections_while_stopping", refuses_new_connections_while_stopping),
    ("close_ok_lets_broker_exit_at_once", close_ok_lets_broker_exit_at_once),
    ("half_open_connections_dropped", half_open_connections_dropped),
    ("sigint_same_as_sigterm", sigint_same_as_sigterm),
    ("idle_broker_exits_fast", idle_broker_exits_fast),
]:
    R.run(name, fn)

sys.exit(R.finish())
