# broker: none
# timeout: 120
"""Limits, each hit with RabbitMQ's reply and then recovered from by closing
what was open.  One broker of our own with a configuration file in
WARREN_TMP:

  [amqp]   channel_max = 4
  [limits] max_connections = 8, max_connections_per_user = 2,
           max_connections_per_vhost = 3, max_queues_per_vhost = 3,
           max_message_size = 64KiB

Texts for the per-user and per-vhost connection limits, the queue limit and
the channel limit were taken from RabbitMQ 3.10.8 with the same limits set
(rabbitmqctl set_user_limits / set_vhost_limits, a client asking for
channel_max 4); as there, the vhost limit is checked before the user limit.
Each refusal must also leave a line in the broker's log."""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pika
from pika.exceptions import ChannelClosedByBroker, ProbableAccessDeniedError

import _amqpraw
from _amqpraw import Results, method, parse_close, shortstr

BIN = os.environ.get("WARREN_BIN")
TMP = os.environ.get("WARREN_TMP", ".")
CTL = os.path.join(os.path.dirname(BIN or "."), "warrenctl")
R = Results()

CONF = """[amqp]
channel_max = 4
[limits]
max_connections = 8
max_connections_per_user = 2
max_connections_per_vhost = 3
max_queues_per_vhost = 3
max_message_size = 64KiB
"""

USER_LIMIT = ("NOT_ALLOWED - connection refused for user '%s': "
              "user connection limit (2) is reached")
VHOST_LIMIT = ("NOT_ALLOWED - access to vhost '%s' refused for user '%s': "
               "connection limit (3) is reached")
QUEUE_LIMIT = ("PRECONDITION_FAILED - cannot declare queue '%s': "
               "queue limit in vhost '%s' (3) is reached")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self):
        self.port = free_port()
        self.data = os.path.join(TMP, "limits-data")
        os.makedirs(self.data, exist_ok=True)
        conf = os.path.join(TMP, "limits.conf")
        with open(conf, "w") as f:
            f.write(CONF)
        self.log_path = os.path.join(TMP, "limits-broker.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [BIN, "--foreground", "--config", conf, "--listen", "127.0.0.1:%d" % self.port,
             "--data-dir", self.data],
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

    def ctl(self, *args):
        p = subprocess.run([CTL, "-q", "-d", self.data] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
        assert p.returncode == 0, "warrenctl %s: %s" % (" ".join(args), p.stderr)
        return p.stdout

    def connect(self, user="guest", password="guest", vhost="/"):
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.port, vhost, pika.PlainCredentials(user, password),
            connection_attempts=1))

    def raw(self):
        _amqpraw.PORT = self.port
        return _amqpraw.Conn()

    def log_text(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker did not stop within 15 s of SIGTERM")
            assert rc == 0, "broker exited %d" % rc
        self.log.close()


B = None


def refused(fn, want_code, want_text):
    """fn() must fail at connection.open with want_code and want_text."""
    try:
        c = fn()
        c.close()
    except ProbableAccessDeniedError as e:
        text = str(e)
        assert str(want_code) in text and want_text in text, \
            "got %s, wanted %d %s" % (text, want_code, want_text)
    else:
        raise AssertionError("connection opened; wanted %d %s" % (want_code, want_text))


def close_all(*conns):
    for c in conns:
        if c is not None and c.is_open:
            c.close()


def expect_log(fragment):
    deadline = time.time() + 3
    while fragment not in B.log_text():
        assert time.time() < deadline, "broker log lacks %r" % fragment
        time.sleep(0.05)


# ---- connections per user and per vhost -------------------------------------

def per_user():
    a1 = B.connect("lim-a", "pa")
    a2 = B.connect("lim-a", "pa")
    try:
        refused(lambda: B.connect("lim-a", "pa"), 530, USER_LIMIT % "lim-a")
        expect_log("closing: " + USER_LIMIT % "lim-a")
        # other users are not affected
        g = B.connect()
        g.close()
        # closing one makes room again
        a1.close()
        a3 = B.connect("lim-a", "pa")
        a3.channel().queue_declare("", exclusive=True)
        a3.close()
    finally:
        close_all(a1, a2)


def per_vhost():
    a1 = B.connect("lim-a", "pa")
    a2 = B.connect("lim-a", "pa")
    b1 = B.connect("lim-b", "pb")
    v = b2 = None
    try:
        # '/' holds 3: b's first is over only the vhost limit
        refused(lambda: B.connect("lim-b", "pb"), 530, VHOST_LIMIT % ("/", "lim-b"))
        expect_log("closing: " + VHOST_LIMIT % ("/", "lim-b"))
        # over both: the vhost limit is reported (RabbitMQ's order)
        refused(lambda: B.connect("lim-a", "pa"), 530, VHOST_LIMIT % ("/", "lim-a"))
        # another vhost counts on its own
        v = B.connect("lim-b", "pb", vhost="lim-v2")
        # room on '/', but now b is at its user limit
        a1.close()
        refused(lambda: B.connect("lim-b", "pb"), 530, USER_LIMIT % "lim-b")
        v.close()
        b2 = B.connect("lim-b", "pb")
    finally:
        close_all(a1, a2, b1, b2, v)


def refused_do_not_count():
    # the refusals above left nothing behind: the full quota is there
    cs = [B.connect("lim-a", "pa"), B.connect("lim-a", "pa"), B.connect("lim-b", "pb")]
    close_all(*cs)


# ---- channels -----------------------------------------------------------------

def channels():
    c = B.raw()
    try:
        m = c.handshake(channel_max=4)
        assert m[1:3] == (10, 41), "handshake: %r" % (m[:3],)
        assert c.tune[0] == 4, "tune offered channel_max %d" % c.tune[0]
        for ch in range(1, 5):
            c.open_channel(ch)
        c.send(method(5, 20, 10, shortstr("")))
        args = c.expect(10, 50, 0)
        want = "NOT_ALLOWED - number of channels opened (4) has reached the negotiated channel_max (4)"
        assert parse_close(args) == (530, want, 0, 0), parse_close(args)
        expect_log("closing: " + want)
    finally:
        c.close()
    # a client may ask for fewer; closing a channel frees its slot
    c = B.raw()
    try:
        m = c.handshake(channel_max=2)
        assert m[1:3] == (10, 41), "handshake: %r" % (m[:3],)
        c.open_channel(1)
        c.open_channel(2)
        c.send(method(2, 20, 40, struct.pack(">H", 200) + shortstr("") + struct.pack(">HH", 0, 0)))
        c.expect(20, 41, 2)
        c.open_channel(2)
        # one more than negotiated
        c.send(method(3, 20, 10, shortstr("")))
        want = "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
        assert parse_close(c.expect(10, 50, 0)) == (530, want, 0, 0)
    finally:
        c.close()


# ---- queues per vhost ---------------------------------------------------------

def queues():
    g = B.connect()
    try:
        ch = g.channel()
        for i in range(3):
            ch.queue_declare("lim-q%d" % i)
        for name, excl in (("lim-q3", False), ("lim-q3x", True)):
            try:
                ch.queue_declare(name, exclusive=excl)
                raise AssertionError("declared queue %s beyond the limit" % name)
            except ChannelClosedByBroker as e:
                assert (e.reply_code, e.reply_text) == (406, QUEUE_LIMIT % (name, "/")), \
                    (e.reply_code, e.reply_text)
            assert g.is_open, "the connection closed with the channel"
            ch = g.channel()
        expect_log("closing: " + QUEUE_LIMIT % ("lim-q3", "/"))
        # a server-named queue is refused under its generated name
        try:
            ch.queue_declare("")
            raise AssertionError("declared a server-named queue beyond the limit")
        except ChannelClosedByBroker as e:
            t = e.reply_text
            assert e.reply_code == 406 and t.startswith(
                "PRECONDITION_FAILED - cannot declare queue 'amq.gen-") and t.endswith(
                "': queue limit in vhost '/' (3) is reached"), (e.reply_code, t)
        ch = g.channel()
        # redeclaring one that exists is no new queue
        ch.queue_declare("lim-q0")
        # another vhost has its own count
        v = B.connect(vhost="lim-v2")
        v.channel().queue_declare("lim-q3")
        v.channel().queue_delete("lim-q3")
        v.close()
        # deleting one makes room
        ch.queue_delete("lim-q2")
        ch.queue_declare("lim-q3")
        for i in (0, 1, 3):
            ch.queue_delete("lim-q%d" % i)
    finally:
        close_all(g)


# ---- message size -------------------------------------------------------------

def message_size():
    g = B.connect()
    try:
        ch = g.channel()
        ch.queue_declare("lim-big")
        ch.basic_publish("", "lim-big", b"x" * 65536)
        ch.basic_publish("", "lim-big", b"x" * 65537)
        try:
            ch.queue_declare("lim-big", passive=True)
            raise AssertionError("a message over max_message_size was accepted")
        except ChannelClosedByBroker as e:
            want = ("PRECONDITION_FAILED - message size 65537 is larger than configured "
                    "max size 65536")
            assert (e.reply_code, e.reply_text) == (406, want), (e.reply_code, e.reply_text)
        ch = g.channel()
        n = ch.queue_declare("lim-big", passive=True).method.message_count
        assert n == 1, "queue holds %d messages, wanted the 64KiB one" % n
        ch.queue_delete("lim-big")
    finally:
        close_all(g)


# ---- connections in all -------------------------------------------------------

def max_connections():
    socks = []
    try:
        # eight connections that got connection.start were accepted
        for _ in range(8):
            c = B.raw()
            c.send(_amqpraw.HEADER)
            c.expect(10, 10)
            socks.append(c)
        # the ninth is closed at once, before any AMQP
        extra = B.raw()
        extra.send(_amqpraw.HEADER)
        assert extra.closed(3.0), "a ninth connection was served"
        extra.close()
        expect_log("connection refused: max_connections (8) reached")
        # one gone, one more fits
        socks.pop().close()
        deadline = time.time() + 3
        while True:
            c = B.raw()
            c.send(_amqpraw.HEADER)
            try:
                m = c.recv_method(1.0)
            except TimeoutError:
                m = None
            if m is not None and m[1:3] == (10, 10):
                socks.append(c)
                break
            c.close()
            assert time.time() < deadline, "no room after closing a connection"
            time.sleep(0.1)
    finally:
        for c in socks:
            c.close()


def main():
    global B
    if not BIN:
        print("WARREN_BIN is not set", file=sys.stderr)
        return 1
    B = Broker()
    try:
        B.ctl("add_user", "lim-a", "pa")
        B.ctl("add_user", "lim-b", "pb")
        B.ctl("add_vhost", "lim-v2")
        for u in ("lim-a", "lim-b", "guest"):
            B.ctl("set_permissions", "-p", "/", u, ".*", ".*", ".*")
            B.ctl("set_permissions", "-p", "lim-v2", u, ".*", ".*", ".*")
        for name, fn in (
            ("max_connections_per_user", per_user),
            ("max_connections_per_vhost, checked before the user limit", per_vhost),
            ("refused connections do not count", refused_do_not_count),
            ("channel_max caps open channels", channels),
            ("max_queues_per_vhost", queues),
            ("max_message_size", message_size),
            ("max_connections", max_connections),
        ):
            R.run(name, fn)
    finally:
        B.stop()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
