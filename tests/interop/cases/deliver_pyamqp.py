# timeout: 90
"""Delivery through python3-amqp (py-amqp, the transport under Celery and
Kombu): publish with properties, consume and ack, basic.get with reject and
requeue, prefetch, requeue on close, publisher confirms (both py-amqp's
blocking confirm_publish mode and pipelined acks seen through its event
hooks), mandatory returns, and transactions.  Expected values are RabbitMQ
3.10's."""

import os
import socket
import sys
import time

import amqp

from _amqpraw import Results

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
PFX = "dpa%d-" % os.getpid()

R = Results()
created = []


def connect(**kw):
    c = amqp.Connection(host="%s:%d" % (HOST, PORT), userid="guest", password="guest", **kw)
    c.connect()
    return c


def declare(ch, name):
    q = PFX + name
    ch.queue_declare(q, durable=False, auto_delete=False)
    created.append(q)
    return q


def depth(q):
    c = connect()
    try:
        return c.channel().queue_declare(q, passive=True).message_count
    finally:
        c.close()


def drain(conn, cond, timeout=5.0):
    """Dispatch incoming frames until cond() holds; cond() at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            conn.drain_events(timeout=min(left, 0.1))
        except socket.timeout:
            pass
    return cond()


def settle_briefly(conn, secs=0.3):
    drain(conn, lambda: False, timeout=secs)


def publish_consume_ack():
    c = connect()
    ch = c.channel()
    q = declare(ch, "pca")
    for i in range(5):
        ch.basic_publish(amqp.Message(b"body-%d" % i, content_type="application/json",
                                      delivery_mode=2, correlation_id="c%d" % i,
                                      application_headers={"seq": i, "who": "pyamqp"}),
                         exchange="", routing_key=q)
    got = []

    def on_message(m):
        got.append(m)
        ch.basic_ack(m.delivery_tag)

    tag = ch.basic_consume(q, callback=on_message)
    assert drain(c, lambda: len(got) == 5), "%d of 5 delivered" % len(got)
    for i, m in enumerate(got):
        assert m.body == b"body-%d" % i, m.body
        assert m.properties["content_type"] == "application/json", m.properties
        assert m.properties["delivery_mode"] == 2 and m.properties["correlation_id"] == "c%d" % i
        assert m.properties["application_headers"] == {"seq": i, "who": "pyamqp"}, m.properties
        info = m.delivery_info
        assert (info["consumer_tag"], info["routing_key"], info["exchange"],
                info["redelivered"]) == (tag, q, "", False), info
    assert [m.delivery_tag for m in got] == [1, 2, 3, 4, 5]
    ch.basic_cancel(tag)
    c.close()
    assert depth(q) == 0, "acked messages are still queued"


def get_reject_requeue():
    c = connect()
    ch = c.channel()
    q = declare(ch, "grr")
    ch.basic_publish(amqp.Message(b"a"), routing_key=q)
    ch.basic_publish(amqp.Message(b"b"), routing_key=q)
    m = ch.basic_get(q)
    assert m.body == b"a" and not m.delivery_info["redelivered"], m.delivery_info
    assert m.delivery_info["message_count"] == 1, m.delivery_info
    ch.basic_reject(m.delivery_tag, requeue=True)
    m = ch.basic_get(q)
    assert m.body == b"a" and m.delivery_info["redelivered"], \
        "a requeued message comes back first, redelivered: %r" % ((m.body, m.delivery_info),)
    ch.basic_ack(m.delivery_tag)
    m = ch.basic_get(q, no_ack=True)
    assert m.body == b"b" and m.delivery_info["message_count"] == 0
    assert ch.basic_get(q) is None, "expected get-empty"
    c.close()


def prefetch_and_requeue_on_close():
    c = connect()
    ch = c.channel()
    q = declare(ch, "pfr")
    for i in range(6):
        ch.basic_publish(amqp.Message(b"%d" % i), routing_key=q)
    ch.basic_qos(prefetch_size=0, prefetch_count=2, a_global=False)
    got = []
    ch.basic_consume(q, callback=got.append)
    drain(c, lambda: len(got) >= 2)
    settle_briefly(c)
    assert len(got) == 2, "prefetch 2: %d delivered without acks" % len(got)
    ch.basic_ack(got[1].delivery_tag, multiple=True)
    drain(c, lambda: len(got) >= 4)
    settle_briefly(c)
    assert len(got) == 4, "after acking 2: %d delivered" % len(got)
    c.close()
    assert depth(q) == 4, "the 2 unacked should be back: depth %d" % depth(q)
    c = connect()
    m = c.channel().basic_get(q, no_ack=True)
    assert (m.body, m.delivery_info["redelivered"]) == (b"2", True), (m.body, m.delivery_info)
    c.close()


def blocking_confirms():
    c = connect(confirm_publish=True)
    ch = c.channel()
    q = declare(ch, "bconf")
    for i in range(200):
        ch.basic_publish(amqp.Message(b"%d" % i), routing_key=q)
    c.close()
    assert depth(q) == 200


def pipelined_confirms():
    n = 2000
    c = connect()
    ch = c.channel()
    q = declare(ch, "pconf")
    settled = {}
    bad = []

    def on(kind):
        def cb(tag, multiple):
            tags = [t for t in range(1, tag + 1) if t not in settled] if multiple else [tag]
            for t in tags:
                if t in settled:
                    bad.append("tag %d settled twice" % t)
                settled[t] = kind
        return cb

    ch.events["basic_ack"].add(on("ack"))
    ch.events["basic_nack"].add(on("nack"))
    ch.confirm_select()
    for i in range(n):
        ch.basic_publish(amqp.Message(b"%d" % i), routing_key=q)
    assert drain(c, lambda: len(settled) >= n, timeout=30), "%d of %d confirmed" % (len(settled), n)
    settle_briefly(c)
    assert not bad, bad[:5]
    assert sorted(settled) == list(range(1, n + 1)), "confirm tags are not 1..%d" % n
    assert set(settled.values()) == {"ack"}, "some publishes were nacked"
    c.close()
    assert depth(q) == n


def mandatory_return():
    c = connect()
    ch = c.channel()
    returned = []
    acks = []
    ch.events["basic_return"].add(
        lambda exc, exchange, rk, m: returned.append((exc.reply_code, exc.reply_text, exchange,
                                                      rk, m.body)))
    ch.events["basic_ack"].add(lambda tag, multiple: acks.append((tag, len(returned))))
    ch.confirm_select()
    ch.basic_publish(amqp.Message(b"r"), exchange="amq.direct", routing_key="nobody",
                     mandatory=True)
    assert drain(c, lambda: acks), "no confirm for the returned message"
    assert returned == [(312, "NO_ROUTE", "amq.direct", "nobody", b"r")], returned
    assert acks == [(1, 1)], "the return must arrive before the ack: %r" % acks
    c.close()


def tx_commit_rollback():
    c = connect()
    ch = c.channel()
    q = declare(ch, "tx")
    ch.tx_select()
    ch.basic_publish(amqp.Message(b"no"), routing_key=q)
    ch.tx_rollback()
    ch.basic_publish(amqp.Message(b"yes"), routing_key=q)
    assert depth(q) == 0, "an uncommitted publish is visible"
    ch.tx_commit()
    assert depth(q) == 1
    m = ch.basic_get(q)
    assert m.body == b"yes", m.body
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()  # the ack is undone: the message stays unacked
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    ch.close()
    assert depth(q) == 0, "the committed ack did not take"
    ch = c.channel()
    try:
        ch.tx_commit()
    except amqp.exceptions.PreconditionFailed as e:
        assert (e.reply_code, e.reply_text) == (406, "PRECONDITION_FAILED - channel is not "
                                                     "transactional"), (e.reply_code, e.reply_text)
    else:
        raise AssertionError("tx.commit without tx.select should fail")
    c.close()


def cleanup():
    c = connect()
    ch = c.channel()
    for q in created:
        ch.queue_delete(q)
    c.close()


def main():
    for fn in (publish_consume_ack, get_reject_requeue, prefetch_and_requeue_on_close,
               blocking_confirms, pipelined_confirms, mandatory_return, tx_commit_rollback,
               cleanup):
        R.run(fn.__name__, fn)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
