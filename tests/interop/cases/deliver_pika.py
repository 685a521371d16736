# timeout: 240
"""Delivery semantics through python3-pika, consumer side (plus raw frames
where pika cannot say what we need): work queues, prefetch, acks, nacks and
rejects, basic.get, recover, requeue on channel and connection close, qos
scopes, consumer priorities, exclusivity and tags, cancel notification.
The publishing side is deliver_pika_publish.py, which imports the helpers
here.

Every expected value is RabbitMQ 3.10's observable behaviour; each check uses
its own queues, so a failure in one does not cascade into the next."""

import os
import sys
import time

import pika
import pika.exceptions as pexc

from _amqpraw import Conn, Results, method, parse_close, shortstr, table

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
PFX = "dp%d-" % os.getpid()
MAX_MESSAGE_SIZE = 128 * 1024 * 1024  # the broker's default, as RabbitMQ's

R = Results()
created = []


def params(**kw):
    return pika.ConnectionParameters(host=HOST, port=PORT, heartbeat=0,
                                     credentials=pika.PlainCredentials("guest", "guest"),
                                     **kw)


def connect(**kw):
    return pika.BlockingConnection(params(**kw))


def qname(name):
    return PFX + name


def declare(ch, name, **kw):
    n = qname(name)
    ch.queue_declare(n, **kw)
    if n not in created:
        created.append(n)
    return n


def depth(name):
    """Ready messages in a queue, asked on a connection of its own."""
    c = connect()
    try:
        return c.channel().queue_declare(name, passive=True).method.message_count
    finally:
        c.close()


def pump(conn, cond=None, timeout=5.0):
    """Run conn's I/O until cond() holds (or for timeout if cond is None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond is not None and cond():
            return True
        conn.process_data_events(time_limit=0.05)
    return cond() if cond is not None else True


def expect_channel_closed(fn, code, text):
    try:
        fn()
    except pexc.ChannelClosedByBroker as e:
        assert (e.reply_code, e.reply_text) == (code, text), \
            "expected channel.close %d %r, got %d %r" % (code, text, e.reply_code, e.reply_text)
        return
    raise AssertionError("expected channel.close %d %r, channel stayed open" % (code, text))


class Collector:
    """A consumer callback that records what arrived, acking on request."""

    def __init__(self, ack=False):
        self.got = []
        self.ack = ack

    def __call__(self, ch, m, props, body):
        self.got.append((m.delivery_tag, m.redelivered, body, props, m))
        if self.ack:
            ch.basic_ack(m.delivery_tag)

    def bodies(self):
        return [g[2] for g in self.got]


def publish_n(ch, q, n, fmt="m%d", start=0):
    for i in range(start, start + n):
        ch.basic_publish("", q, (fmt % i).encode())


# ---- work queues and prefetch --------------------------------------------

def round_robin():
    c = connect()
    chans = [c.channel() for _ in range(3)]
    q = declare(chans[0], "rr")
    cols = []
    for ch in chans:
        ch.basic_qos(prefetch_count=10)
        col = Collector(ack=True)
        ch.basic_consume(q, col)
        cols.append(col)
    pub = c.channel()
    publish_n(pub, q, 9)
    pump(c, lambda: sum(len(x.got) for x in cols) == 9)
    counts = [len(x.got) for x in cols]
    assert counts == [3, 3, 3], "expected 3 deliveries per consumer, got %r" % counts
    for col in cols:
        idx = [int(b[1:]) for b in col.bodies()]
        assert len({i % 3 for i in idx}) == 1, "not round-robin: one consumer got %r" % idx
    c.close()


def fair_dispatch_prefetch_1():
    c = connect()
    chans = [c.channel() for _ in range(3)]
    q = declare(chans[0], "fair")
    fast = Collector(ack=True)
    slow = [Collector(), Collector()]
    for ch, col in zip(chans, [fast] + slow):
        ch.basic_qos(prefetch_count=1)
        ch.basic_consume(q, col)
    pub = c.channel()
    publish_n(pub, q, 12)
    pump(c, lambda: len(fast.got) + len(slow[0].got) + len(slow[1].got) == 12)
    pump(c, timeout=0.3)
    got = (len(fast.got), len(slow[0].got), len(slow[1].got))
    assert got == (10, 1, 1), "prefetch 1: expected (fast, slow, slow) = (10, 1, 1), got %r" % (got,)
    c.close()
    n = depth(q)
    assert n == 2, "the two unacked deliveries should be back in the queue, depth %d" % n


def prefetch_n():
    c = connect()
    ch = c.channel()
    q = declare(ch, "pfn")
    publish_n(ch, q, 10)
    ch.basic_qos(prefetch_count=4)
    col = Collector()
    ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) >= 4)
    pump(c, timeout=0.3)
    assert len(col.got) == 4, "prefetch 4: %d deliveries before any ack" % len(col.got)
    ch.basic_ack(col.got[3][0], multiple=True)
    pump(c, lambda: len(col.got) >= 8)
    pump(c, timeout=0.3)
    assert len(col.got) == 8, "after acking 4: %d deliveries, expected 8" % len(col.got)
    ch.basic_ack(col.got[5][0])
    pump(c, lambda: len(col.got) >= 9)
    pump(c, timeout=0.3)
    assert len(col.got) == 9, "after acking 1 more: %d deliveries, expected 9" % len(col.got)
    assert col.bodies() == [b"m%d" % i for i in range(9)], col.bodies()
    c.close()


# ---- acks, nacks, rejects --------------------------------------------------

def requeue_keeps_position():
    c = connect()
    ch = c.channel()
    q = declare(ch, "pos")
    publish_n(ch, q, 5)
    m1, _, b1 = ch.basic_get(q)
    m2, _, b2 = ch.basic_get(q)
    assert (b1, b2) == (b"m0", b"m1"), (b1, b2)
    assert (m1.message_count, m2.message_count) == (4, 3), \
        "get-ok message_count: %r" % ((m1.message_count, m2.message_count),)
    assert not m1.redelivered and not m2.redelivered
    ch.basic_reject(m2.delivery_tag, requeue=True)
    ch.basic_nack(m1.delivery_tag, requeue=True)
    got = []
    for _ in range(3):
        m, _, b = ch.basic_get(q, auto_ack=True)
        got.append((b, m.redelivered, m.message_count))
    want = [(b"m0", True, 4), (b"m1", True, 3), (b"m2", False, 2)]
    assert got == want, "after requeue: got %r, expected %r" % (got, want)
    c.close()


def reject_without_requeue_drops():
    c = connect()
    ch = c.channel()
    q = declare(ch, "drop")
    publish_n(ch, q, 3)
    m, _, b = ch.basic_get(q)
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, _, b = ch.basic_get(q)
    ch.basic_nack(m.delivery_tag, requeue=False)
    m, _, b = ch.basic_get(q, auto_ack=True)
    assert b == b"m2" and not m.redelivered and m.message_count == 0, (b, m)
    c.close()
    assert depth(q) == 0


def consumer_nack_redelivers():
    c = connect()
    ch = c.channel()
    q = declare(ch, "nackc")
    col = Collector()
    ch.basic_consume(q, col)
    publish_n(ch, q, 5)
    pump(c, lambda: len(col.got) == 5)
    tags = [g[0] for g in col.got]
    ch.basic_nack(tags[2], multiple=True, requeue=True)
    pump(c, lambda: len(col.got) == 8)
    again = [(g[2], g[1]) for g in col.got[5:]]
    assert again == [(b"m0", True), (b"m1", True), (b"m2", True)], \
        "redelivered after nack multiple: %r" % again
    new_tags = [g[0] for g in col.got[5:]]
    assert new_tags == [6, 7, 8], "redeliveries get fresh tags, got %r" % new_tags
    ch.basic_ack(0, multiple=True)
    c.close()
    assert depth(q) == 0


def unknown_delivery_tag():
    c = connect()
    ch = c.channel()
    ch.basic_ack(99)
    expect_channel_closed(lambda: ch.queue_declare("", exclusive=True), 406,
                          "PRECONDITION_FAILED - unknown delivery tag 99")
    assert c.is_open, "an unknown tag is a channel error only"
    c.close()


def double_ack():
    c = connect()
    ch = c.channel()
    q = declare(ch, "dblack")
    publish_n(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)
    expect_channel_closed(lambda: ch.queue_declare(q, passive=True), 406,
                          "PRECONDITION_FAILED - unknown delivery tag 1")
    c.close()


def reject_unknown_tag():
    c = connect()
    ch = c.channel()
    ch.basic_reject(7, requeue=True)
    expect_channel_closed(lambda: ch.queue_declare("", exclusive=True), 406,
                          "PRECONDITION_FAILED - unknown delivery tag 7")
    c.close()


def ack_multiple():
    c = connect()
    ch = c.channel()
    q = declare(ch, "ackm")
    col = Collector()
    ch.basic_consume(q, col)
    publish_n(ch, q, 5)
    pump(c, lambda: len(col.got) == 5)
    assert [g[0] for g in col.got] == [1, 2, 3, 4, 5], [g[0] for g in col.got]
    ch.basic_ack(3, multiple=True)
    ch.close()  # 4 and 5 go back
    assert depth(q) == 2, "ack multiple 3 of 5 should leave 2 to requeue"
    ch = c.channel()
    m, _, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.redelivered) == (b"m3", True), (b, m.redelivered)
    c.close()


def ack_multiple_zero():
    c = connect()
    ch = c.channel()
    q = declare(ch, "ackall")
    publish_n(ch, q, 4)
    for _ in range(4):
        ch.basic_get(q)
    ch.basic_ack(0, multiple=True)  # "everything so far"
    ch.close()
    assert depth(q) == 0, "ack(0, multiple) should ack every outstanding delivery"
    c.close()


def ack_multiple_settled_tag():
    # RabbitMQ wants the tag itself outstanding, even with multiple=true
    c = connect()
    ch = c.channel()
    q = declare(ch, "ackms")
    publish_n(ch, q, 3)
    for _ in range(3):
        ch.basic_get(q)
    ch.basic_ack(2)
    ch.basic_ack(2, multiple=True)
    expect_channel_closed(lambda: ch.queue_declare(q, passive=True), 406,
                          "PRECONDITION_FAILED - unknown delivery tag 2")
    c.close()
    n = depth(q)
    assert n == 2, "tags 1 and 3 should be requeued (the refused ack took nothing): depth %d" % n


def ack_multiple_noack_tag():
    c = connect()
    ch = c.channel()
    q = declare(ch, "ackmn")
    publish_n(ch, q, 2)
    ch.basic_get(q)
    ch.basic_get(q, auto_ack=True)
    ch.basic_ack(2, multiple=True)  # tag 2 was a no-ack delivery
    expect_channel_closed(lambda: ch.queue_declare(q, passive=True), 406,
                          "PRECONDITION_FAILED - unknown delivery tag 2")
    c.close()


def ack_multiple_skips_noack():
    c = connect()
    ch = c.channel()
    q = declare(ch, "ackmk")
    publish_n(ch, q, 3)
    ch.basic_get(q)
    ch.basic_get(q, auto_ack=True)
    ch.basic_get(q)
    ch.basic_ack(3, multiple=True)  # covers 1 and 3; 2 needed no ack
    ch.close()
    assert depth(q) == 0, "ack multiple over a no-ack tag should ack 1 and 3"
    c.close()


def ack_after_cancel():
    c = connect()
    ch = c.channel()
    q = declare(ch, "ackcancel")
    publish_n(ch, q, 2)
    col = Collector()
    tag = ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 2)
    ch.basic_cancel(tag)
    assert depth(q) == 0, "cancel must leave its deliveries unacked, not requeue them"
    ch.basic_ack(col.got[1][0], multiple=True)
    ch.close()
    assert depth(q) == 0, "acks after cancel-ok should still settle the deliveries"
    c.close()


# ---- basic.get and recover -------------------------------------------------

def get_and_get_empty():
    c = connect()
    ch = c.channel()
    q = declare(ch, "get")
    m, p, b = ch.basic_get(q)
    assert m is None, "empty queue should answer get-empty"
    ch.basic_publish("", q, b"x", pika.BasicProperties(content_type="text/plain",
                                                       headers={"h": 1}))
    ch.basic_publish("", q, b"y")
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.message_count, m.exchange, m.routing_key) == (b"x", 1, "", q), \
        (b, m.message_count, m.exchange, m.routing_key)
    assert p.content_type == "text/plain" and p.headers == {"h": 1}, p
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.message_count) == (b"y", 0)
    m, p, b = ch.basic_get(q)
    assert m is None
    c.close()


def recover_requeue():
    c = connect()
    ch = c.channel()
    q = declare(ch, "recover")
    col = Collector()
    ch.basic_consume(q, col)
    publish_n(ch, q, 3)
    pump(c, lambda: len(col.got) == 3)
    assert not any(g[1] for g in col.got)
    ch.basic_recover(requeue=True)
    pump(c, lambda: len(col.got) == 6)
    again = [(g[2], g[1]) for g in col.got[3:]]
    assert again == [(b"m0", True), (b"m1", True), (b"m2", True)], again
    ch.basic_ack(0, multiple=True)
    ch.close()
    assert depth(q) == 0
    c.close()


def recover_without_requeue():
    c = Conn()
    c.handshake()
    c.open_channel(1)
    c.send(method(1, 60, 110, b"\x00"))  # basic.recover requeue=false
    m = c.recv_method()
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    got = parse_close(m[3])
    assert got == (540, "NOT_IMPLEMENTED - requeue=false", 60, 110), got
    c.send(method(0, 10, 51))
    c.close()


# ---- requeue when the owner goes away ----------------------------------------

def requeue_on_channel_close():
    c = connect()
    ch = c.channel()
    q = declare(ch, "chclose")
    publish_n(ch, q, 3)
    col = Collector()
    ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 3)
    ch.close()
    ch = c.channel()
    got = []
    for _ in range(3):
        m, _, b = ch.basic_get(q, auto_ack=True)
        got.append((b, m.redelivered))
    assert got == [(b"m0", True), (b"m1", True), (b"m2", True)], got
    c.close()


def requeue_on_connection_close():
    c = connect()
    ch = c.channel()
    q = declare(ch, "cnclose")
    publish_n(ch, q, 3)
    m, _, _ = ch.basic_get(q)
    col = Collector()
    ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 2)
    c.close()
    c = connect()
    ch = c.channel()
    got = []
    for _ in range(3):
        m, _, b = ch.basic_get(q, auto_ack=True)
        got.append((b, m.redelivered))
    assert got == [(b"m0", True), (b"m1", True), (b"m2", True)], got
    c.close()


def requeue_on_socket_drop():
    c = connect()
    ch = c.channel()
    q = declare(ch, "drop-sock")
    publish_n(ch, q, 2)
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    raw.send(method(1, 60, 70, b"\x00\x00" + shortstr(q) + b"\x00"))
    raw.expect(60, 71, 1)
    raw.recv_frame()  # header
    raw.recv_frame()  # body
    raw.s.close()  # no connection.close: the broker must notice EOF
    ok = pump(c, lambda: depth(q) == 2, timeout=5)
    assert ok, "the unacked message did not come back after the socket closed"
    m, _, b = ch.basic_get(q, auto_ack=True)
    assert (b, m.redelivered) == (b"m0", True), (b, m.redelivered)
    c.close()


# ---- qos scopes ----------------------------------------------------------

def qos_per_consumer():
    c = connect()
    ch = c.channel()
    qa, qb = declare(ch, "qosA"), declare(ch, "qosB")
    publish_n(ch, qa, 5)
    publish_n(ch, qb, 5)
    ch.basic_qos(prefetch_count=2, global_qos=False)
    ca, cb = Collector(), Collector()
    ch.basic_consume(qa, ca)
    ch.basic_consume(qb, cb)
    pump(c, lambda: len(ca.got) + len(cb.got) >= 4)
    pump(c, timeout=0.3)
    assert (len(ca.got), len(cb.got)) == (2, 2), \
        "global=false limits each consumer: got %r" % ((len(ca.got), len(cb.got)),)
    c.close()


def qos_global():
    c = connect()
    ch = c.channel()
    qa, qb = declare(ch, "qosgA"), declare(ch, "qosgB")
    publish_n(ch, qa, 5)
    publish_n(ch, qb, 5)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    ca, cb = Collector(), Collector()
    ch.basic_consume(qa, ca)
    ch.basic_consume(qb, cb)
    pump(c, lambda: len(ca.got) + len(cb.got) >= 3)
    pump(c, timeout=0.3)
    assert len(ca.got) + len(cb.got) == 3, \
        "global=true limits the channel: got %r" % ((len(ca.got), len(cb.got)),)
    ch.basic_ack(0, multiple=True)
    pump(c, lambda: len(ca.got) + len(cb.got) >= 6)
    pump(c, timeout=0.3)
    assert len(ca.got) + len(cb.got) == 6, \
        "after acking all 3, 3 more should come: (A, B) = %r" % ((len(ca.got), len(cb.got)),)
    c.close()


def qos_scopes_combined(order, want):
    c = connect()
    ch = c.channel()
    qa, qb = declare(ch, "qosbA"), declare(ch, "qosbB")
    ch.queue_purge(qa)
    ch.queue_purge(qb)
    publish_n(ch, qa, 5)
    publish_n(ch, qb, 5)
    for glob, count in order:
        ch.basic_qos(prefetch_count=count, global_qos=glob)
    ca, cb = Collector(), Collector()
    ch.basic_consume(qa, ca)
    ch.basic_consume(qb, cb)
    pump(c, lambda: len(ca.got) + len(cb.got) >= sum(want))
    pump(c, timeout=0.3)
    got = sorted((len(ca.got), len(cb.got)))
    c.close()
    return got


def qos_consumer_then_global():
    # both limits apply: at most 2 per consumer, 3 on the channel
    got = qos_scopes_combined([(False, 2), (True, 3)], [1, 2])
    assert got == [1, 2], "per-consumer 2 inside channel 3: got %r" % got


def qos_global_then_consumer():
    # RabbitMQ: a later global=false qos lifts the channel-wide limit
    got = qos_scopes_combined([(True, 3), (False, 2)], [2, 2])
    assert got == [2, 2], "global limit should be lifted by qos(global=false): got %r" % got


def qos_applies_to_later_consumers():
    c = connect()
    ch = c.channel()
    qa, qb = declare(ch, "qoslA"), declare(ch, "qoslB")
    publish_n(ch, qa, 8)
    publish_n(ch, qb, 8)
    ch.basic_qos(prefetch_count=1)
    ca, cb = Collector(), Collector()
    ch.basic_consume(qa, ca)
    ch.basic_qos(prefetch_count=5)
    ch.basic_consume(qb, cb)
    pump(c, lambda: len(ca.got) + len(cb.got) >= 6)
    pump(c, timeout=0.3)
    assert (len(ca.got), len(cb.got)) == (1, 5), \
        "a per-consumer limit is fixed when the consumer starts: got %r" % (
            (len(ca.got), len(cb.got)),)
    c.close()


# ---- consumers -----------------------------------------------------------

def consumer_priority():
    c = connect()
    lo_ch, hi_ch, pub = c.channel(), c.channel(), c.channel()
    q = declare(pub, "prio")
    lo_ch.basic_qos(prefetch_count=5)
    hi_ch.basic_qos(prefetch_count=5)
    lo, hi = Collector(), Collector()
    lo_ch.basic_consume(q, lo)
    hi_ch.basic_consume(q, hi, arguments={"x-priority": 10})
    publish_n(pub, q, 5)
    pump(c, lambda: len(hi.got) + len(lo.got) >= 5)
    pump(c, timeout=0.3)
    assert (len(hi.got), len(lo.got)) == (5, 0), \
        "the high-priority consumer should take all 5: got hi=%d lo=%d" % (len(hi.got), len(lo.got))
    publish_n(pub, q, 3, start=5)
    pump(c, lambda: len(lo.got) >= 3)
    pump(c, timeout=0.3)
    assert (len(hi.got), len(lo.got)) == (5, 3), \
        "with hi full, lo gets the rest: got hi=%d lo=%d" % (len(hi.got), len(lo.got))
    hi_ch.basic_ack(0, multiple=True)
    publish_n(pub, q, 2, start=8)
    pump(c, lambda: len(hi.got) >= 7)
    pump(c, timeout=0.3)
    assert (len(hi.got), len(lo.got)) == (7, 3), \
        "hi has room again: got hi=%d lo=%d" % (len(hi.got), len(lo.got))
    c.close()


def bad_priority_argument():
    c = connect()
    ch = c.channel()
    q = declare(ch, "badprio")
    want = ("PRECONDITION_FAILED - invalid arg 'x-priority' for queue '%s' in vhost '/': "
            '"expected integer, got longstr"' % q)
    expect_channel_closed(lambda: ch.basic_consume(q, Collector(), consumer_tag="bp",
                                                   arguments={"x-priority": "high"}),
                          406, want)
    c.close()


def big_priority_accepted():
    c = connect()
    ch = c.channel()
    q = declare(ch, "bigprio")
    ch.basic_consume(q, Collector(), arguments={"x-priority": 2 ** 40})  # a signed 64-bit value
    ch.basic_consume(q, Collector(), arguments={"x-priority": -5})
    assert ch.is_open
    c.close()


def qos_prefetch_size():
    c = connect()
    ch = c.channel()
    try:
        ch.basic_qos(prefetch_size=1000, prefetch_count=1)
    except pexc.ConnectionClosedByBroker as e:
        got = (e.reply_code, e.reply_text)
        assert got == (540, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)"), got
    else:
        raise AssertionError("basic.qos with prefetch_size should close the connection")


def exclusive_consumer():
    c1, c2 = connect(), connect()
    ch1 = c1.channel()
    q = declare(ch1, "excl")
    ch1.basic_consume(q, Collector(), exclusive=True)
    ch2 = c2.channel()
    expect_channel_closed(lambda: ch2.basic_consume(q, Collector()), 403,
                          "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q)
    # and the other way round: an exclusive consume when a consumer exists
    ch3 = c1.channel()
    q2 = declare(ch3, "excl2")
    ch3.basic_consume(q2, Collector())
    ch4 = c2.channel()
    expect_channel_closed(lambda: ch4.basic_consume(q2, Collector(), exclusive=True), 403,
                          "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q2)
    c1.close()
    c2.close()


def get_beside_exclusive_consumer():
    c1, c2 = connect(), connect()
    ch1 = c1.channel()
    q = declare(ch1, "exclget")
    publish_n(ch1, q, 2)
    ch1.basic_qos(prefetch_count=1)
    col = Collector()
    ch1.basic_consume(q, col, exclusive=True)
    pump(c1, lambda: col.got)
    m, _, b = c2.channel().basic_get(q, auto_ack=True)
    assert b == b"m1", "basic.get beside an exclusive consumer: %r" % b
    c1.close()
    c2.close()


def reuse_consumer_tag():
    # pika refuses a duplicate tag itself, so this one goes over raw frames
    c = connect()
    q = declare(c.channel(), "reuse")
    c.close()
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    for _ in range(2):
        raw.send(method(1, 60, 20, b"\x00\x00" + shortstr(q) + shortstr("t1") + b"\x00" +
                        table({})))
    raw.expect(60, 21, 1)
    m = raw.recv_method()
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    got = parse_close(m[3])
    assert got == (530, "NOT_ALLOWED - attempt to reuse consumer tag 't1'", 60, 20), got
    raw.send(method(0, 10, 51))
    assert raw.closed()


def server_consumer_tags():
    c = connect()
    q = declare(c.channel(), "ctag")
    c.close()
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    tags = []
    for _ in range(2):
        raw.send(method(1, 60, 20, b"\x00\x00" + shortstr(q) + shortstr("") + b"\x00" +
                        table({})))
        args = raw.expect(60, 21, 1)
        tags.append(args[1:1 + args[0]].decode())
    assert all(t.startswith("amq.ctag-") for t in tags), tags
    assert tags[0] != tags[1] and len(tags[0]) > len("amq.ctag-"), tags
    raw.close()


def cancel_notification():
    c = connect()
    ch = c.channel()
    q = declare(ch, "cancelme")
    cancelled = []
    ch.add_on_cancel_callback(lambda f: cancelled.append(f.method.consumer_tag))
    tag = ch.basic_consume(q, Collector())
    other = c.channel()
    other.queue_delete(q)
    pump(c, lambda: cancelled)
    assert cancelled == [tag], "expected basic.cancel for %r, got %r" % (tag, cancelled)
    assert ch.is_open, "the consumer's channel stays open"
    q2 = declare(ch, "after-cancel")
    ch.basic_publish("", q2, b"still-works")
    m, _, b = ch.basic_get(q2, auto_ack=True)
    assert b == b"still-works"
    c.close()


def cancel_ok_and_stop():
    c = connect()
    ch = c.channel()
    q = declare(ch, "cancelok")
    col = Collector()
    tag = ch.basic_consume(q, col)
    ch.basic_cancel(tag)
    publish_n(ch, q, 2)
    pump(c, timeout=0.3)
    assert col.got == [], "deliveries after cancel-ok: %r" % col.got
    assert depth(q) == 2
    c.close()


def cleanup():
    c = connect()
    ch = c.channel()
    for q in created:
        ch.queue_delete(q)
    c.close()


CHECKS = [
    round_robin, fair_dispatch_prefetch_1, prefetch_n,
    requeue_keeps_position, reject_without_requeue_drops, consumer_nack_redelivers,
    unknown_delivery_tag, double_ack, reject_unknown_tag, ack_multiple, ack_multiple_zero,
    ack_multiple_settled_tag, ack_multiple_noack_tag, ack_multiple_skips_noack, ack_after_cancel,
    get_and_get_empty, recover_requeue, recover_without_requeue,
    requeue_on_channel_close, requeue_on_connection_close, requeue_on_socket_drop,
    qos_per_consumer, qos_global, qos_consumer_then_global, qos_global_then_consumer,
    qos_applies_to_later_consumers, qos_prefetch_size,
    consumer_priority, bad_priority_argument, big_priority_accepted,
    exclusive_consumer, get_beside_exclusive_consumer, reuse_consumer_tag,
    server_consumer_tags, cancel_notification, cancel_ok_and_stop,
]


def main(checks):
    """Run the checks named on the command line (all by default)."""
    only = sys.argv[1:]
    for fn in checks:
        if only and fn.__name__ not in only:
            continue
        R.run(fn.__name__, fn)
    R.run("cleanup", cleanup)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main(CHECKS))
