# timeout: 180
"""Delivery semantics through python3-pika, publishing side (plus raw frames
where pika cannot say what we need): mandatory returns and their order
against confirms, publisher confirms under load, confirm/tx exclusivity,
nacks for publishes a full queue refuses, transactions over publishes and
acks, immediate, the message size limit, sender-selected distribution
(CC/BCC) and bodies split over many frames.

Expected values are RabbitMQ 3.10's; the helpers come from deliver_pika.py."""

import random
import struct
import sys

import pika
import pika.exceptions as pexc

from _amqpraw import Conn, frame, method, parse_close, shortstr
from deliver_pika import (MAX_MESSAGE_SIZE, Collector, connect, created, declare, depth,
                          expect_channel_closed, main, params, publish_n, pump, qname)


# ---- publishing --------------------------------------------------------------

def mandatory_return_before_confirm():
    c = connect()
    ch = c.channel()
    ch.confirm_delivery()
    try:
        ch.basic_publish("", qname("nowhere"), b"lost", mandatory=True)
    except pexc.UnroutableError as e:
        assert len(e.messages) == 1 and e.messages[0].body == b"lost", e.messages
        m = e.messages[0].method
        assert (m.reply_code, m.reply_text) == (312, "NO_ROUTE"), (m.reply_code, m.reply_text)
    else:
        raise AssertionError("pika saw no basic.return before the ack")
    q = declare(ch, "routable")
    ch.basic_publish("", q, b"found", mandatory=True)  # no exception: acked, not returned
    assert depth(q) == 1
    c.close()


def mandatory_return_order_raw():
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    raw.send(method(1, 85, 10, b"\x00"))
    raw.expect(85, 11, 1)
    raw.send(method(1, 60, 40, b"\x00\x00" + shortstr("amq.direct") + shortstr("none") + b"\x01"))
    raw.send(frame(2, 1, struct.pack(">HHQH", 60, 0, 3, 0)))
    raw.send(frame(3, 1, b"abc"))
    seen = []
    while len(seen) < 4:
        m = raw.recv_method()
        assert m is not None, "connection closed"
        if m[0] == "content":
            seen.append(("content", m[2]))
        else:
            seen.append((m[1], m[2]))
            if (m[1], m[2]) == (60, 50):
                code = struct.unpack(">H", m[3][:2])[0]
                assert code == 312, code
            if (m[1], m[2]) == (60, 80):
                assert struct.unpack(">Q", m[3][:8])[0] == 1
    assert seen == [(60, 50), ("content", 2), ("content", 3), (60, 80)], \
        "expected return, header, body, then ack; got %r" % seen
    raw.close()


def confirm_nack_on_reject_publish():
    c = connect()
    ch = c.channel()
    q = declare(ch, "full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fits")
    try:
        ch.basic_publish("", q, b"overflows")
    except pexc.NackError:
        pass
    else:
        raise AssertionError("a publish refused by a full reject-publish queue was acked")
    assert depth(q) == 1
    c.close()


def tx_commit_returns_first():
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    raw.send(method(1, 90, 10))
    raw.expect(90, 11, 1)
    raw.send(method(1, 60, 40, b"\x00\x00" + shortstr("amq.direct") + shortstr("none") + b"\x01"))
    raw.send(frame(2, 1, struct.pack(">HHQH", 60, 0, 1, 0)))
    raw.send(frame(3, 1, b"z"))
    raw.send(method(1, 90, 20))
    seen = []
    while not seen or seen[-1] != (90, 21):
        m = raw.recv_method()
        assert m is not None, "connection closed"
        seen.append(("content", m[2]) if m[0] == "content" else (m[1], m[2]))
    assert seen == [(60, 50), ("content", 2), ("content", 3), (90, 21)], \
        "a committed unroutable mandatory publish: expected return, header, body, commit-ok; " \
        "got %r" % seen
    raw.close()


def confirms_under_load():
    n = 10000
    q = qname("confirm-load")
    created.append(q)
    settled = {}
    bad = []
    state = {"published": 0}

    def on_confirm(f):
        m = f.method
        kind = "ack" if isinstance(m, pika.spec.Basic.Ack) else "nack"
        tags = [m.delivery_tag]
        if m.multiple:
            tags = [t for t in range(1, m.delivery_tag + 1) if t not in settled]
            if not tags:
                bad.append("multiple %s %d settles nothing new" % (kind, m.delivery_tag))
        for t in tags:
            if t in settled:
                bad.append("tag %d settled twice" % t)
            elif t > state["published"]:
                bad.append("tag %d confirmed before it was published" % t)
            settled[t] = kind
        if len(settled) >= n:
            conn.close()

    def on_declared(ch):
        ch.confirm_delivery(on_confirm, callback=lambda _f: publish(ch))

    def publish(ch):
        for i in range(n):
            state["published"] += 1
            ch.basic_publish("", q, b"%d" % i)

    def on_channel(ch):
        ch.queue_declare(q, callback=lambda _f: on_declared(ch))

    def on_open(cn):
        cn.channel(on_open_callback=on_channel)

    conn = pika.SelectConnection(params(), on_open_callback=on_open,
                                 on_open_error_callback=lambda cn, e: bad.append("open: %r" % e),
                                 on_close_callback=lambda cn, e: cn.ioloop.stop())
    timer = conn.ioloop.call_later(120, conn.ioloop.stop)
    conn.ioloop.start()
    conn.ioloop.remove_timeout(timer)
    assert not bad, bad[:5]
    assert len(settled) == n, "%d of %d publishes confirmed" % (len(settled), n)
    nacks = [t for t, k in settled.items() if k != "ack"]
    assert not nacks, "nacked: %r" % nacks[:5]
    assert depth(q) == n, "queue holds %d of %d" % (depth(q), n)


def confirm_then_tx():
    c = connect()
    ch = c.channel()
    ch.confirm_delivery()
    expect_channel_closed(ch.tx_select, 406,
                          "PRECONDITION_FAILED - cannot switch from confirm to tx mode")
    ch = c.channel()
    ch.tx_select()
    expect_channel_closed(ch.confirm_delivery, 406,
                          "PRECONDITION_FAILED - cannot switch from tx to confirm mode")
    c.close()


def tx_not_selected():
    c = connect()
    ch = c.channel()
    expect_channel_closed(ch.tx_commit, 406, "PRECONDITION_FAILED - channel is not transactional")
    ch = c.channel()
    expect_channel_closed(ch.tx_rollback, 406,
                          "PRECONDITION_FAILED - channel is not transactional")
    c.close()


def tx_publish():
    c = connect()
    ch = c.channel()
    q = declare(ch, "txpub")
    ch.tx_select()
    publish_n(ch, q, 3)
    assert depth(q) == 0, "uncommitted publishes are visible"
    ch.tx_rollback()
    assert depth(q) == 0, "rolled-back publishes arrived"
    publish_n(ch, q, 2, fmt="c%d")
    ch.tx_commit()
    assert depth(q) == 2, "committed publishes: depth %d" % depth(q)
    ch.tx_commit()  # an empty commit is fine
    m, _, b = ch.basic_get(q, auto_ack=True)
    assert b == b"c0", b
    c.close()


def tx_ack():
    c = connect()
    ch = c.channel()
    q = declare(ch, "txack")
    publish_n(ch, q, 3)
    ch.tx_select()
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_ack(tags[0])
    ch.basic_ack(tags[1])
    ch.tx_rollback()  # the acks are forgotten; the deliveries stay unacked
    ch.basic_ack(tags[2])
    ch.tx_commit()
    ch.close()  # m0 and m1 are still unacked and come back
    ch = c.channel()
    got = [ch.basic_get(q, auto_ack=True)[2] for _ in range(2)]
    assert got == [b"m0", b"m1"], got
    assert ch.basic_get(q)[0] is None, "the committed ack did not take"
    c.close()


def tx_reject_requeue():
    c = connect()
    ch = c.channel()
    q = declare(ch, "txrej")
    publish_n(ch, q, 1)
    ch.tx_select()
    m, _, _ = ch.basic_get(q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    assert depth(q) == 0, "a reject inside a transaction takes effect before commit"
    ch.tx_commit()
    assert depth(q) == 1, "the committed reject should requeue"
    c.close()


def immediate_flag():
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    raw.send(method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("x") + b"\x02"))
    raw.send(frame(2, 1, struct.pack(">HHQH", 60, 0, 1, 0)))
    raw.send(frame(3, 1, b"i"))
    m = raw.recv_method()
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    got = parse_close(m[3])
    assert got == (540, "NOT_IMPLEMENTED - immediate=true", 60, 40), got
    raw.send(method(0, 10, 51))
    assert raw.closed()


def oversized_message():
    c = connect()
    q = declare(c.channel(), "big")
    c.close()
    raw = Conn()
    raw.handshake()
    raw.open_channel(1)
    size = MAX_MESSAGE_SIZE + 1
    raw.send(method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr(q) + b"\x00"))
    raw.send(frame(2, 1, struct.pack(">HHQH", 60, 0, size, 0)))
    m = raw.recv_method(timeout=10)
    assert m is not None and m[1:3] == (20, 40), "expected channel.close, got %r" % (m,)
    got = parse_close(m[3])
    want = (406, "PRECONDITION_FAILED - message size %d is larger than configured max size %d"
            % (size, MAX_MESSAGE_SIZE), 60, 40)
    assert got == want, "got %r, expected %r" % (got, want)
    raw.send(method(1, 20, 41))
    raw.open_channel(2)
    raw.send(method(2, 60, 40, b"\x00\x00" + shortstr("") + shortstr(q) + b"\x00"))
    raw.send(frame(2, 2, struct.pack(">HHQH", 60, 0, 2, 0)))
    raw.send(frame(3, 2, b"ok"))
    raw.send(method(2, 60, 70, b"\x00\x00" + shortstr(q) + b"\x01"))
    raw.expect(60, 71, 2)
    h = raw.recv_frame()
    b = raw.recv_frame()
    assert h[0] == 2 and b == (3, 2, b"ok"), (h, b)
    raw.close()


def cc_bcc():
    c = connect()
    ch = c.channel()
    q1, q2, q3, q4 = (declare(ch, n) for n in ("cc1", "cc2", "cc3", "cc4"))
    ch.queue_bind(q4, "amq.direct", routing_key="cc-key")
    props = pika.BasicProperties(headers={"CC": [q2], "BCC": [q3], "other": "kept"})
    ch.basic_publish("", q1, b"sel", props)
    props = pika.BasicProperties(headers={"CC": ["cc-key"]})
    ch.basic_publish("amq.direct", "unbound", b"via-cc", props)
    for q in (q1, q2, q3):
        m, p, b = ch.basic_get(q, auto_ack=True)
        assert b == b"sel", "%s got %r" % (q, b)
        assert m.routing_key == q1, "routing key should stay the published one: %r" % m.routing_key
        assert p.headers == {"CC": [q2], "other": "kept"}, "%s headers %r" % (q, p.headers)
    m, p, b = ch.basic_get(q4, auto_ack=True)
    assert b == b"via-cc" and m.routing_key == "unbound", (b, m)
    for q in (q1, q2, q3, q4):
        assert ch.basic_get(q)[0] is None, "%s got a second copy" % q
    c.close()


def cc_not_an_array():
    # RabbitMQ names the field type as its Erlang codec does
    for i, (key, value, kind) in enumerate([("CC", "other", "longstr"), ("BCC", "other", "longstr"),
                                            ("CC", 5, "signedint"), ("CC", {"a": 1}, "table")]):
        c = connect()
        ch = c.channel()
        q = declare(ch, "ccbad%d" % i)
        props = pika.BasicProperties(headers={key: value})
        expect_channel_closed(
            lambda: (ch.basic_publish("", q, b"x", props), ch.queue_declare(q, passive=True)),
            406, 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"%s",%s}'
            % (key, kind))
        c.close()
        assert depth(q) == 0, "%s=%r: the message was routed anyway" % (key, value)


def small_frame_max():
    body = bytes(random.getrandbits(8) for _ in range(50000))
    c = connect(frame_max=4096)
    ch = c.channel()
    q = declare(ch, "frames")
    ch.basic_publish("", q, body)
    ch.basic_publish("", q, body[:4088])  # exactly one full frame
    ch.basic_publish("", q, b"")  # no body frame at all
    col = Collector(ack=True)
    ch.basic_consume(q, col)
    pump(c, lambda: len(col.got) == 3)
    assert [len(b) for b in col.bodies()] == [50000, 4088, 0], [len(b) for b in col.bodies()]
    assert col.bodies()[0] == body, "body corrupted across frames"
    c.close()
    # the broker's own deliveries honour the negotiated frame_max
    c = connect()
    c.channel().basic_publish("", q, body)
    c.close()
    raw = Conn()
    raw.handshake(frame_max=4096)
    raw.open_channel(1)
    raw.send(method(1, 60, 70, b"\x00\x00" + shortstr(q) + b"\x01"))
    raw.expect(60, 71, 1)
    ftype, _, payload = raw.recv_frame()
    assert ftype == 2
    size = struct.unpack(">Q", payload[4:12])[0]
    assert size == 50000, size
    got = b""
    sizes = []
    while len(got) < size:
        ftype, _, payload = raw.recv_frame()
        assert ftype == 3, "expected a body frame, got type %d" % ftype
        sizes.append(len(payload))
        got += payload
    assert got == body, "broker's frames reassemble to a different body"
    assert max(sizes) <= 4096 - 8, "a body frame of %d bytes exceeds frame_max 4096" % max(sizes)
    assert len(sizes) == 13, "expected 13 full-size frames, got %r" % sizes
    raw.close()


CHECKS = [
    mandatory_return_before_confirm,
    mandatory_return_order_raw,
    confirm_nack_on_reject_publish,
    tx_commit_returns_first,
    confirms_under_load,
    confirm_then_tx,
    tx_not_selected,
    tx_publish,
    tx_ack,
    tx_reject_requeue,
    immediate_flag,
    oversized_message,
    cc_bcc,
    cc_not_an_array,
    small_frame_max,
]


if __name__ == "__main__":
    sys.exit(main(CHECKS))
