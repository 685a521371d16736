# timeout: 90
"""Dead lettering, priorities and single active consumer with python3-pika:
the x-death header checked field by field for rejected, expired and maxlen
deaths, repeated deaths and cycles; x-max-priority ordering; hand-over
between single active consumers.

Expected values were taken from RabbitMQ 3.10.8 running the same calls; the
case runs against Warren only.  The client helpers are route_args_pika.py's
(whose checks run only when it is the case being run)."""

import sys
import time

from route_args_pika import EXPIRY_WAIT, Client, R, check_death, check_first_death, n


# -------------------------------------------------------------- dead letters

def dead_letter_rejected():
    q, dlx, dlq = n("dl-rej"), n("dl-rej-x"), n("dl-rej-q")
    with Client() as c:
        c.ch.exchange_declare(dlx, "direct")
        c.ch.queue_declare(dlq)
        c.ch.queue_bind(dlq, dlx, "dead")
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx,
                                         "x-dead-letter-routing-key": "dead"})
        c.ch.queue_bind(q, "amq.direct", q)
        c.pub("amq.direct", q, b"r1", headers={"CC": ["cc-key"], "app": "v"},
              expiration="60000", message_id="id-1")
        m, _, _ = c.get(q, ack=False)
        c.ch.basic_reject(m.delivery_tag, requeue=False)
        m, props, body = c.get(dlq)
        assert (m.exchange, m.routing_key, body) == (dlx, "dead", b"r1"), m
        assert props.expiration is None, "expiration kept on a dead-lettered message"
        assert props.message_id == "id-1", props
        h = props.headers
        assert set(h) == {"app", "x-death", "x-first-death-exchange", "x-first-death-queue",
                          "x-first-death-reason"}, "headers %r (CC dropped, x-death added)" % h
        assert h["app"] == "v"
        assert len(h["x-death"]) == 1, h["x-death"]
        check_death(h["x-death"][0], "rejected", q, "amq.direct", [q, "cc-key"],
                    original_expiration="60000")
        check_first_death(h, "rejected", q, "amq.direct")
        # nack(requeue=false) dead-letters too; requeue=true does not.
        c.pub("", q, b"r2")
        m, _, _ = c.get(q, ack=False)
        c.ch.basic_nack(m.delivery_tag, requeue=True)
        m, _, _ = c.get(q, ack=False)
        assert m.redelivered
        c.ch.basic_nack(m.delivery_tag, requeue=False)
        m, props, body = c.get(dlq)
        assert body == b"r2"
        check_death(props.headers["x-death"][0], "rejected", q, "", [q])
        assert c.drain(dlq) == [] and c.drain(q) == []


def dead_letter_expired():
    q, dlx, dlq = n("dl-exp"), n("dl-exp-x"), n("dl-exp-q")
    with Client() as c:
        c.ch.exchange_declare(dlx, "fanout")
        c.ch.queue_declare(dlq)
        c.ch.queue_bind(dlq, dlx)
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx, "x-message-ttl": 200})
        c.pub("", q, b"e1")
        c.pub("", q, b"e2", expiration="100")
        c.wait(EXPIRY_WAIT)
        m, props, body = c.get(dlq)
        # No x-dead-letter-routing-key: the original key is kept.
        assert (m.exchange, m.routing_key, body) == (dlx, q, b"e1"), m
        check_death(props.headers["x-death"][0], "expired", q, "", [q])
        check_first_death(props.headers, "expired", q, "")
        m, props, body = c.get(dlq)
        assert body == b"e2"
        check_death(props.headers["x-death"][0], "expired", q, "", [q],
                    original_expiration="100")
        assert props.expiration is None
        assert c.drain(dlq) == []


def dead_letter_maxlen():
    q, dlq = n("dl-max"), n("dl-max-q")
    with Client() as c:
        c.ch.queue_declare(dlq)
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": dlq,
                                         "x-max-length": 1})
        c.pub("", q, b"first")
        c.pub("", q, b"second")
        assert c.drain(q) == ["second"]
        m, props, body = c.get(dlq)
        assert (m.exchange, m.routing_key, body) == ("", dlq, b"first"), m
        check_death(props.headers["x-death"][0], "maxlen", q, "", [q])
        check_first_death(props.headers, "maxlen", q, "")


def dead_letter_twice_and_count():
    """x-death keeps one entry per (queue, reason), newest first, counting repeats."""
    a, b = n("dl-a"), n("dl-b")
    with Client() as c:
        c.ch.queue_declare(a, arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": b})
        c.ch.queue_declare(b, arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": a})
        c.pub("", a, b"ping")
        for q in (a, b, a):
            m, _, _ = c.get(q, ack=False)
            c.ch.basic_reject(m.delivery_tag, requeue=False)
        m, props, body = c.get(b)
        assert body == b"ping"
        deaths = props.headers["x-death"]
        assert len(deaths) == 2, deaths
        check_death(deaths[0], "rejected", a, "", [a], count=2)
        check_death(deaths[1], "rejected", b, "", [b], count=1)
        check_first_death(props.headers, "rejected", a, "")


def dead_letter_expiry_cycle_dropped():
    """A message expiring round a dead-letter cycle with no rejection is dropped."""
    q = n("dl-cycle")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": q,
                                         "x-message-ttl": 100})
        c.pub("", q, b"loop")
        c.wait(3.5)
        assert c.count(q) == 0
        assert c.drain(q) == []


def dead_letter_missing_exchange():
    q = n("dl-missing")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": n("no-such-dlx")})
        c.pub("", q, b"x")
        m, _, _ = c.get(q, ack=False)
        c.ch.basic_reject(m.delivery_tag, requeue=False)
        assert c.drain(q) == []
        c.ch.queue_declare(q, passive=True)  # and the channel is still fine


def dead_letter_to_itself_and_internal():
    """Rejecting into a queue's own DLX route is allowed (rejection is no cycle),
    and an internal exchange can be a DLX."""
    q = n("dl-self")
    idlx, idq, src = n("dl-int-x"), n("dl-int-q"), n("dl-int-src")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": ""})
        c.pub("", q, b"again")
        m, _, _ = c.get(q, ack=False)
        c.ch.basic_reject(m.delivery_tag, requeue=False)
        m, props, body = c.get(q)
        assert body == b"again" and not m.redelivered, m
        check_death(props.headers["x-death"][0], "rejected", q, "", [q])
        c.ch.exchange_declare(idlx, "fanout", internal=True)
        c.ch.queue_declare(idq)
        c.ch.queue_bind(idq, idlx)
        c.ch.queue_declare(src, arguments={"x-dead-letter-exchange": idlx})
        c.pub("", src, b"in")
        m, _, _ = c.get(src, ack=False)
        c.ch.basic_reject(m.delivery_tag, requeue=False)
        m, props, body = c.get(idq)
        assert (m.exchange, body) == (idlx, b"in"), m


def dead_letter_on_queue_purge_and_delete_no():
    """Purged and deleted messages are not dead-lettered."""
    q, dlq = n("dl-purge"), n("dl-purge-q")
    with Client() as c:
        c.ch.queue_declare(dlq)
        c.ch.queue_declare(q, arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": dlq})
        c.pub("", q, b"a")
        c.ch.queue_purge(q)
        c.pub("", q, b"b")
        c.ch.queue_delete(q)
        assert c.drain(dlq) == []


# --------------------------------------------------------- priorities, SAC

def max_priority():
    q = n("prio")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-max-priority": 5})
        for body, prio in (("p0", 0), ("p5", 5), ("p3", 3), ("p9", 9), ("none", None),
                           ("p1", 1), ("p3b", 3)):
            c.pub("", q, body.encode(), priority=prio)
        got = []
        while True:
            m, props, body = c.ch.basic_get(q, auto_ack=True)
            if m is None:
                break
            got.append((body.decode(), props.priority))
        # Above the maximum counts as the maximum; the property itself is kept.
        assert got == [("p5", 5), ("p9", 9), ("p3", 3), ("p3b", 3), ("p1", 1),
                       ("p0", 0), ("none", None)], got


def max_priority_consumer_order():
    q = n("prio-cons")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-max-priority": 10})
        for i, prio in enumerate((1, 10, 5, 1, 10)):
            c.pub("", q, b"m%d" % i, priority=prio)
        got = []
        cons = c.channel()
        cons.basic_qos(prefetch_count=1)

        def on_msg(ch, m, p, b):
            got.append(b.decode())
            ch.basic_ack(m.delivery_tag)
        cons.basic_consume(q, on_msg)
        deadline = time.time() + 5
        while len(got) < 5 and time.time() < deadline:
            c.wait(0.05)
        assert got == ["m1", "m4", "m2", "m0", "m3"], got


def no_priority_is_fifo():
    q = n("noprio")
    with Client() as c:
        c.ch.queue_declare(q)
        for i, prio in enumerate((1, 9, 5)):
            c.pub("", q, b"m%d" % i, priority=prio)
        assert c.drain(q) == ["m0", "m1", "m2"]


def single_active_consumer():
    q = n("sac")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-single-active-consumer": True})
        got1, got2 = [], []
        ch1, ch2 = c.channel(), c.channel()
        t1 = ch1.basic_consume(q, lambda ch, m, p, b: got1.append(b.decode()), auto_ack=True)
        ch2.basic_consume(q, lambda ch, m, p, b: got2.append(b.decode()), auto_ack=True)
        r = c.ch.queue_declare(q, passive=True)
        assert r.method.consumer_count == 2, r
        for i in range(4):
            c.pub("", q, b"a%d" % i)
        deadline = time.time() + 3
        while len(got1) < 4 and time.time() < deadline:
            c.wait(0.05)
        c.wait(0.2)
        assert (got1, got2) == (["a0", "a1", "a2", "a3"], []), (got1, got2)
        ch1.basic_cancel(t1)
        for i in range(2):
            c.pub("", q, b"b%d" % i)
        deadline = time.time() + 3
        while len(got2) < 2 and time.time() < deadline:
            c.wait(0.05)
        assert got2 == ["b0", "b1"], got2
        assert len(got1) == 4


def single_active_consumer_handover_requeues():
    q = n("sac2")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-single-active-consumer": True})
        for i in range(3):
            c.pub("", q, b"m%d" % i)
        got1, got2 = [], []
        ch1, ch2 = c.channel(), c.channel()
        ch1.basic_qos(prefetch_count=1)
        ch1.basic_consume(q, lambda ch, m, p, b: got1.append(b.decode()))
        ch2.basic_consume(q, lambda ch, m, p, b: got2.append((b.decode(), m.redelivered)),
                          auto_ack=True)
        deadline = time.time() + 3
        while not got1 and time.time() < deadline:
            c.wait(0.05)
        c.wait(0.2)
        assert (got1, got2) == (["m0"], []), (got1, got2)
        ch1.close()  # unacked m0 goes back; the second consumer takes over
        deadline = time.time() + 3
        while len(got2) < 3 and time.time() < deadline:
            c.wait(0.05)
        assert got2 == [("m0", True), ("m1", False), ("m2", False)], got2


def single_active_consumer_cancel_with_unacked():
    """After the active consumer cancels, the next one gets nothing until the
    cancelled consumer's unacked messages are settled, so order is kept."""
    q = n("sac3")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-single-active-consumer": True})
        for i in range(3):
            c.pub("", q, b"s%d" % i)
        got1, got2 = [], []
        ch1, ch2 = c.channel(), c.channel()
        ch1.basic_qos(prefetch_count=1)
        t1 = ch1.basic_consume(q, lambda ch, m, p, b: got1.append((b.decode(), m.delivery_tag)))
        ch2.basic_consume(q, lambda ch, m, p, b: got2.append((b.decode(), m.redelivered)),
                          auto_ack=True)
        c.wait(0.3)
        assert ([b for b, _ in got1], got2) == (["s0"], []), (got1, got2)
        ch1.basic_cancel(t1)
        c.wait(0.5)
        assert got2 == [], "second consumer served while s0 was still unacked: %r" % got2
        ch1.basic_reject(got1[0][1], requeue=True)
        deadline = time.time() + 3
        while len(got2) < 3 and time.time() < deadline:
            c.wait(0.05)
        assert got2 == [("s0", True), ("s1", False), ("s2", False)], got2


for name, fn in [
    ("dead-letter: rejected", dead_letter_rejected),
    ("dead-letter: expired", dead_letter_expired),
    ("dead-letter: maxlen", dead_letter_maxlen),
    ("dead-letter: twice, count", dead_letter_twice_and_count),
    ("dead-letter: expiry cycle dropped", dead_letter_expiry_cycle_dropped),
    ("dead-letter: missing exchange", dead_letter_missing_exchange),
    ("dead-letter: to itself, internal DLX", dead_letter_to_itself_and_internal),
    ("dead-letter: not on purge/delete", dead_letter_on_queue_purge_and_delete_no),
    ("x-max-priority", max_priority),
    ("x-max-priority with a consumer", max_priority_consumer_order),
    ("no x-max-priority: FIFO", no_priority_is_fifo),
    ("x-single-active-consumer", single_active_consumer),
    ("single active consumer hand-over", single_active_consumer_handover_requeues),
    ("single active consumer cancel with unacked", single_active_consumer_cancel_with_unacked),
]:
    R.run(name, fn)
sys.exit(R.finish())
