# timeout: 90
"""Queues with python3-pika: server-named queues, declare-ok counts,
equivalence errors, exclusive and auto-delete lifetimes, purge, delete
conditions, unbind, 255-byte names, NOT_FOUND texts, exclusive consumers.

Every expected reply code and text was taken from RabbitMQ 3.10.8 running
the same calls; the case runs against Warren only.  The client helpers are
route_pika.py's (whose checks run only when it is the case being run)."""

import sys
import time

import pika

from route_pika import (LOCKED, Client, R, eventually, expect_error, n, queue_exists,
                        queue_gone)


def server_named_queue():
    with Client() as c:
        r = c.ch.queue_declare("")
        name = r.method.queue
        assert name.startswith("amq.gen-") and len(name) > len("amq.gen-") + 8, name
        r2 = c.ch.queue_declare("")
        assert r2.method.queue != name, "two server-named queues got the same name"
        c.pub("", name, b"hi")
        assert c.drain(name) == ["hi"]
        # Its owner may declare it passively by name, but not actively: the
        # amq. prefix is reserved even then.
        c.ch.queue_declare(name, passive=True)
        try:
            c.channel().queue_declare(name)
        except pika.exceptions.ChannelClosedByBroker as e:
            assert (e.reply_code, e.reply_text) == (
                403, "ACCESS_REFUSED - queue name '%s' contains reserved prefix 'amq.*'" % name), e
        else:
            raise AssertionError("active declare of an amq.gen- name succeeded")
    expect_error(lambda ch: ch.queue_declare("", passive=True), 404,
                 "NOT_FOUND - no queue '' in vhost '/'")


def server_named_queue_last_declared():
    """An empty queue name in bind/publish/get/purge means the channel's last declared queue."""
    with Client() as c:
        name = c.ch.queue_declare("").method.queue
        c.ch.queue_bind("", "amq.direct", n("lastq"))
        c.pub("amq.direct", n("lastq"), b"x")
        r = c.ch.queue_declare(name, passive=True)
        assert r.method.message_count == 1, r
        m, _, body = c.ch.basic_get("", auto_ack=True)
        assert body == b"x", body
        c.pub("", name, b"y")
        assert c.ch.queue_purge("").method.message_count == 1


def declare_ok_counts():
    q = n("counts")
    with Client() as c:
        r = c.ch.queue_declare(q)
        assert (r.method.queue, r.method.message_count, r.method.consumer_count) == (q, 0, 0)
        for i in range(3):
            c.pub("", q, b"m%d" % i)
        r = c.ch.queue_declare(q)
        assert (r.method.message_count, r.method.consumer_count) == (3, 0), r
        cons = c.channel()
        cons.basic_qos(prefetch_count=1)
        got = []
        cons.basic_consume(q, lambda ch, m, p, b: got.append(b))
        deadline = time.time() + 3
        while not got and time.time() < deadline:
            c.wait(0.05)
        assert got == [b"m0"], got
        # Ready messages only: the unacked one is not counted.
        r = c.ch.queue_declare(q, passive=True)
        assert (r.method.message_count, r.method.consumer_count) == (2, 1), r
        cons2 = c.channel()
        cons2.basic_qos(prefetch_count=1)
        cons2.basic_consume(q, lambda *a: None)
        c.wait(0.2)
        r = c.ch.queue_declare(q, passive=True)
        assert (r.method.message_count, r.method.consumer_count) == (1, 2), r
        cons.close()  # its unacked message goes back
        c.wait(0.2)
        r = c.ch.queue_declare(q, passive=True)
        assert r.method.consumer_count == 1, r


def queue_equivalence():
    q = n("eqv")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-message-ttl": 1000})
        c.ch.queue_declare(q, arguments={"x-message-ttl": 1000})
        c.ch.queue_declare(q, passive=True, durable=True, arguments={"x-message-ttl": 5})
        # Unknown (non x-) arguments are not compared.
        c.ch.queue_declare(q, arguments={"x-message-ttl": 1000, "foo": 1})
    base = "PRECONDITION_FAILED - inequivalent arg '%s' for queue '" + q + "' in vhost '/': "
    expect_error(lambda ch: ch.queue_declare(q, durable=True,
                                             arguments={"x-message-ttl": 1000}), 406,
                 base % "durable" + "received 'true' but current is 'false'")
    expect_error(lambda ch: ch.queue_declare(q, auto_delete=True,
                                             arguments={"x-message-ttl": 1000}), 406,
                 base % "auto_delete" + "received 'true' but current is 'false'")
    expect_error(lambda ch: ch.queue_declare(q, arguments={"x-message-ttl": 2000}), 406,
                 base % "x-message-ttl" + "received '2000' but current is '1000'")
    expect_error(lambda ch: ch.queue_declare(q), 406,
                 base % "x-message-ttl" +
                 "received none but current is the value '1000' of type 'signedint'")
    expect_error(lambda ch: ch.queue_declare(q, exclusive=True,
                                             arguments={"x-message-ttl": 1000}), 405,
                 LOCKED % q)
    q2 = n("eqv2")
    with Client() as c:
        c.ch.queue_declare(q2)
    expect_error(lambda ch: ch.queue_declare(q2, arguments={"x-max-length": 10}), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '%s' in "
                 "vhost '/': received the value '10' of type 'signedint' but current is "
                 "none" % q2)


def exclusive_from_other_connection():
    q = n("excl")
    owner = Client()
    try:
        owner.ch.queue_declare(q, exclusive=True)
        owner.ch.queue_bind(q, "amq.direct", q)
        owner.pub("", q, b"mine")
        ops = (
            ("declare exclusive", lambda ch: ch.queue_declare(q, exclusive=True)),
            ("declare", lambda ch: ch.queue_declare(q)),
            ("passive", lambda ch: ch.queue_declare(q, passive=True)),
            ("get", lambda ch: ch.basic_get(q)),
            ("consume", lambda ch: ch.basic_consume(q, lambda *a: None)),
            ("purge", lambda ch: ch.queue_purge(q)),
            ("delete", lambda ch: ch.queue_delete(q)),
            ("bind", lambda ch: ch.queue_bind(q, "amq.fanout")),
            ("unbind", lambda ch: ch.queue_unbind(q, "amq.direct", q)),
        )
        for what, op in ops:
            try:
                expect_error(op, 405, LOCKED % q)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (what, e))
        # Publishing to it from elsewhere is fine.
        with Client() as other:
            other.pub("", q, b"theirs")
            other.pub("amq.direct", q, b"theirs2")
        assert owner.drain(q) == ["mine", "theirs", "theirs2"]
        # The owner, on any of its channels, has full access.
        ch2 = owner.channel()
        ch2.queue_declare(q, passive=True)
        ch2.queue_declare(q, exclusive=True)
        ch2.queue_purge(q)
    finally:
        owner.__exit__()


def exclusive_vanishes_with_connection():
    q = n("excl-gone")
    owner = Client()
    owner.ch.queue_declare(q, exclusive=True)
    owner.ch.queue_bind(q, "amq.fanout")
    ch2 = owner.channel()
    ch2.close()  # closing a channel keeps it
    queue_exists_via(owner, q)
    owner.__exit__()
    eventually(queue_gone(q))
    # The name is free again for anyone.
    with Client() as c:
        c.ch.queue_declare(q)
        c.ch.queue_delete(q)


def queue_exists_via(client, q):
    client.channel().queue_declare(q, passive=True)


def auto_delete_queue():
    q = n("autodel")
    with Client() as c:
        c.ch.queue_declare(q, auto_delete=True)
    time.sleep(0.3)
    queue_exists(q)  # never had a consumer: stays
    with Client() as c:
        t1 = c.ch.basic_consume(q, lambda *a: None)
        t2 = c.ch.basic_consume(q, lambda *a: None)
        c.ch.basic_cancel(t1)
        time.sleep(0.2)
        queue_exists_via(c, q)  # one consumer left
        c.ch.basic_cancel(t2)
    eventually(queue_gone(q))


def auto_delete_queue_on_channel_close():
    q = n("autodel2")
    with Client() as c:
        c.ch.queue_declare(q, auto_delete=True)
        ch2 = c.channel()
        ch2.basic_consume(q, lambda *a: None)
        ch2.close()  # the consumer goes with its channel
    eventually(queue_gone(q))


def purge_counts():
    q = n("purge")
    with Client() as c:
        c.ch.queue_declare(q)
        for i in range(5):
            c.pub("", q, b"x")
        assert c.ch.queue_purge(q).method.message_count == 5
        assert c.ch.queue_purge(q).method.message_count == 0
        c.pub("", q, b"after")
        assert c.drain(q) == ["after"]
        # Purge leaves unacked messages alone.
        for i in range(3):
            c.pub("", q, b"u%d" % i)
        m, _, _ = c.ch.basic_get(q, auto_ack=False)
        assert c.ch.queue_purge(q).method.message_count == 2
        c.ch.basic_nack(m.delivery_tag, requeue=True)
        assert c.drain(q) == ["u0"]


def queue_delete_conditions():
    q = n("qdel")
    with Client() as c:
        c.ch.queue_declare(q)
        c.pub("", q, b"x")
        c.pub("", q, b"y")
    expect_error(lambda ch: ch.queue_delete(q, if_empty=True), 406,
                 "PRECONDITION_FAILED - queue '%s' in vhost '/' not empty" % q)
    with Client() as c:
        c.ch.basic_consume(q, lambda *a: None)
        expect_error(lambda ch: ch.queue_delete(q, if_unused=True), 406,
                     "PRECONDITION_FAILED - queue '%s' in vhost '/' in use" % q)
    with Client() as c:
        # The consumer's connection closed; its two deliveries came back.
        r = c.ch.queue_delete(q, if_unused=True)
        assert r.method.message_count == 2, r
    queue_gone(q)()
    with Client() as c:
        c.ch.queue_declare(q)
        assert c.ch.queue_delete(q, if_empty=True).method.message_count == 0
        # delete-ok counts ready messages, not unacked ones.
        c.ch.queue_declare(q)
        for i in range(3):
            c.pub("", q, b"x")
        c.ch.basic_get(q, auto_ack=False)
        assert c.ch.queue_delete(q).method.message_count == 2


def queue_delete_drops_bindings():
    q = n("qdel-b")
    with Client() as c:
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, "amq.direct", q)
        c.ch.queue_delete(q)
        c.ch.queue_declare(q)
        c.pub("amq.direct", q, b"x")
        assert c.drain(q) == [], "binding survived the queue's deletion"


def unbind_stops_routing():
    x, q = n("unb-x"), n("unb-q")
    with Client() as c:
        c.ch.exchange_declare(x, "topic")
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x, "a.*")
        c.ch.queue_bind(q, x, "b.*")
        c.pub(x, "a.1", b"a1")
        c.ch.queue_unbind(q, x, "a.*")
        c.ch.queue_unbind(q, x, "a.*")  # twice: still fine
        c.pub(x, "a.2", b"a2")
        c.pub(x, "b.1", b"b1")
        assert c.drain(q) == ["a1", "b1"]


def long_names():
    q, x, k = "q" * 255, "x" * 255, "k" * 255
    with Client() as c:
        r = c.ch.queue_declare(q)
        assert r.method.queue == q
        c.ch.exchange_declare(x, "direct")
        c.ch.queue_bind(q, x, k)
        c.pub(x, k, b"long")
        m, _, body = c.get(q)
        assert (m.exchange, m.routing_key, body) == (x, k, b"long")
        c.ch.queue_delete(q)
        c.ch.exchange_delete(x)
    # 256 bytes cannot be expressed in a shortstr; the client refuses to send it.
    try:
        with Client() as c:
            c.ch.queue_declare("q" * 256)
    except pika.exceptions.ShortStringTooLong:
        pass
    else:
        raise AssertionError("a 256-byte name went through")


def not_found_texts():
    q, x = n("nf-q"), n("nf-x")
    noq = "NOT_FOUND - no queue '%s' in vhost '/'" % q
    nox = "NOT_FOUND - no exchange '%s' in vhost '/'" % x
    with Client() as c:
        c.ch.queue_declare(n("nf-real"))
    expect_error(lambda ch: ch.queue_declare(q, passive=True), 404, noq)
    expect_error(lambda ch: ch.basic_get(q), 404, noq)
    expect_error(lambda ch: ch.basic_consume(q, lambda *a: None), 404, noq)
    expect_error(lambda ch: ch.queue_purge(q), 404, noq)
    expect_error(lambda ch: ch.queue_bind(q, "amq.direct", "k"), 404, noq)
    expect_error(lambda ch: ch.queue_bind(n("nf-real"), x, "k"), 404, nox)
    # Both missing: the exchange is reported.
    expect_error(lambda ch: ch.queue_bind(q, x, "k"), 404, nox)
    expect_error(lambda ch: ch.exchange_bind(x, "amq.direct", "k"), 404, nox)
    expect_error(lambda ch: ch.exchange_bind("amq.direct", x, "k"), 404, nox)
    expect_error(lambda ch: ch.exchange_declare(x, "direct", passive=True), 404, nox)


def consume_exclusive():
    q = n("cex")
    with Client() as c:
        c.ch.queue_declare(q)
        c.ch.basic_consume(q, lambda *a: None, exclusive=True)
        expect_error(lambda ch: ch.basic_consume(q, lambda *a: None), 403,
                     "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q)
    q2 = n("cex2")
    with Client() as c:
        c.ch.queue_declare(q2)
        c.ch.basic_consume(q2, lambda *a: None)
        expect_error(lambda ch: ch.basic_consume(q2, lambda *a: None, exclusive=True), 403,
                     "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q2)


for name, fn in [
    ("server-named queue", server_named_queue),
    ("empty queue name = last declared", server_named_queue_last_declared),
    ("declare-ok message and consumer counts", declare_ok_counts),
    ("queue.declare equivalence", queue_equivalence),
    ("exclusive queue from another connection", exclusive_from_other_connection),
    ("exclusive queue vanishes with its connection", exclusive_vanishes_with_connection),
    ("auto-delete queue after last consumer", auto_delete_queue),
    ("auto-delete queue when consumer channel closes", auto_delete_queue_on_channel_close),
    ("queue.purge counts", purge_counts),
    ("queue.delete if-unused / if-empty", queue_delete_conditions),
    ("queue.delete drops its bindings", queue_delete_drops_bindings),
    ("queue.unbind stops routing", unbind_stops_routing),
    ("255-byte names", long_names),
    ("NOT_FOUND texts", not_found_texts),
    ("exclusive consumers", consume_exclusive),
]:
    R.run(name, fn)
sys.exit(R.finish())
