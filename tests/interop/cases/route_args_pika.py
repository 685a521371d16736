# timeout: 120
"""Queue arguments with python3-pika: TTLs, expiry, length limits, dead
lettering (x-death checked field by field), priorities, single active
consumer and the 406 texts for invalid argument values.

Expected values were taken from RabbitMQ 3.10.8 running the same calls; the
case runs against Warren only.  Warren enforces TTLs on a ~1 s tick (and at
the head on delivery), so waits for expiry are 1.5 s or more.  Names carry a
per-run suffix so the case can be re-run against a long-lived broker."""

import datetime
import os
import sys
import time
import uuid

import pika

from _amqpraw import Results

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
PARAMS = pika.ConnectionParameters(HOST, PORT, connection_attempts=3, retry_delay=0.5)
RUN = uuid.uuid4().hex[:8]
R = Results()
EXPIRY_WAIT = 1.6


def n(base):
    return "%s-%s" % (base, RUN)


class Client:
    def __init__(self):
        self.conn = pika.BlockingConnection(PARAMS)
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if self.conn.is_open:
                self.conn.close()
        except Exception:
            pass

    def channel(self):
        return self.conn.channel()

    def pub(self, exchange, key, body, **props):
        self.ch.basic_publish(exchange, key, body, pika.BasicProperties(**props))

    def drain(self, queue):
        out = []
        while True:
            m, _, body = self.ch.basic_get(queue, auto_ack=True)
            if m is None:
                return out
            out.append(body.decode())

    def get(self, queue, ack=True, timeout=3.0):
        """The next message; dead-lettering is asynchronous, so wait a little for it."""
        deadline = time.time() + timeout
        while True:
            m, props, body = self.ch.basic_get(queue, auto_ack=ack)
            if m is not None:
                return m, props, body
            assert time.time() < deadline, "queue %s is empty" % queue
            self.wait(0.05)

    def count(self, queue):
        return self.ch.queue_declare(queue, passive=True).method.message_count

    def wait(self, seconds):
        """Serve the connection for this long (process_data_events returns early on input)."""
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            self.conn.process_data_events(left)


def expect_error(fn, code, text):
    with Client() as c:
        ch = c.channel()
        try:
            fn(ch)
        except pika.exceptions.ChannelClosedByBroker as e:
            got = (e.reply_code, e.reply_text)
        except pika.exceptions.ConnectionClosedByBroker as e:
            raise AssertionError("connection closed %d %r, expected channel.close %d %r" % (
                e.reply_code, e.reply_text, code, text))
        else:
            raise AssertionError("succeeded, expected %d %r" % (code, text))
        assert got == (code, text), "expected %d %r, got %d %r" % (code, text, got[0], got[1])


def eventually(fn, timeout=4.0):
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def queue_gone(name):
    def check():
        expect_error(lambda ch: ch.queue_declare(name, passive=True), 404,
                     "NOT_FOUND - no queue '%s' in vhost '/'" % name)
    return check


def check_death(entry, reason, queue, exchange, keys, count=1, original_expiration=None):
    """One x-death table, field by field, as RabbitMQ writes it."""
    want = {"count", "reason", "queue", "time", "exchange", "routing-keys"}
    if original_expiration is not None:
        want.add("original-expiration")
    assert set(entry) == want, "x-death fields %r, expected %r" % (sorted(entry), sorted(want))
    assert entry["reason"] == reason, entry
    assert entry["queue"] == queue, entry
    assert entry["exchange"] == exchange, entry
    assert entry["routing-keys"] == keys, entry
    assert entry["count"] == count and isinstance(entry["count"], int), entry
    assert isinstance(entry["time"], datetime.datetime), entry
    now = datetime.datetime.utcnow()
    assert abs((now - entry["time"]).total_seconds()) < 60, "x-death time %r" % entry["time"]
    if original_expiration is not None:
        assert entry["original-expiration"] == original_expiration, entry


def check_first_death(headers, reason, queue, exchange):
    assert headers.get("x-first-death-reason") == reason, headers
    assert headers.get("x-first-death-queue") == queue, headers
    assert headers.get("x-first-death-exchange") == exchange, headers


# ---------------------------------------------------------------- TTLs

def message_ttl():
    q = n("ttl")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-message-ttl": 300})
        c.pub("", q, b"fresh")
        assert c.drain(q) == ["fresh"], "a message is readable before its TTL"
        c.pub("", q, b"old1")
        c.pub("", q, b"old2")
        c.wait(EXPIRY_WAIT)
        assert c.count(q) == 0, "expired messages still counted"
        assert c.drain(q) == []
        c.pub("", q, b"new")
        assert c.drain(q) == ["new"]


def message_ttl_zero():
    q = n("ttl0")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-message-ttl": 0})
        c.pub("", q, b"nobody-waiting")
        assert c.drain(q) == [], "TTL 0 message kept with no consumer"
        got = []
        cons = c.channel()
        cons.basic_consume(q, lambda ch, m, p, b: got.append(b), auto_ack=True)
        c.pub("", q, b"consumer-waiting")
        deadline = time.time() + 3
        while not got and time.time() < deadline:
            c.wait(0.05)
        assert got == [b"consumer-waiting"], got


def per_message_expiration():
    q = n("pexp")
    with Client() as c:
        c.ch.queue_declare(q)
        c.pub("", q, b"short", expiration="200")
        c.pub("", q, b"long", expiration="60000")
        c.pub("", q, b"forever")
        c.wait(EXPIRY_WAIT)
        m, props, body = c.get(q)
        assert body == b"long" and props.expiration == "60000", (body, props)
        assert c.drain(q) == ["forever"]


def per_message_expiration_behind_head():
    """Expired messages behind a live head are dropped when they reach the head."""
    q = n("pexp2")
    with Client() as c:
        c.ch.queue_declare(q)
        c.pub("", q, b"head")
        c.pub("", q, b"short", expiration="100")
        c.pub("", q, b"tail")
        c.wait(EXPIRY_WAIT)
        assert c.drain(q) == ["head", "tail"]


def queue_and_message_ttl_lower_wins():
    q = n("ttl-both")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-message-ttl": 200})
        c.pub("", q, b"longer", expiration="60000")
        c.pub("", q, b"shorter", expiration="100")
        c.wait(EXPIRY_WAIT)
        assert c.drain(q) == []
        q2 = n("ttl-both2")
        c.ch.queue_declare(q2, arguments={"x-message-ttl": 60000})
        c.pub("", q2, b"short", expiration="100")
        c.pub("", q2, b"kept")
        c.wait(EXPIRY_WAIT)
        assert c.drain(q2) == ["kept"]


def invalid_expiration():
    """A bad expiration property closes the channel (not the connection) with 406."""
    q = n("badexp")
    with Client() as c:
        c.ch.queue_declare(q)
    bad = []
    for exp, why in (("abc", "no_integer"), ("-1", "{value_negative,-1}"),
                     ("", "no_integer"), ("1.5", '{leftover_string,".5"}'),
                     (" 5", "no_integer"), ("5 ", '{leftover_string," "}'),
                     ("0x10", '{leftover_string,"x10"}'),
                     ("315360000001", "{value_too_large,315360000001}")):
        def publish(ch, exp=exp):
            ch.confirm_delivery()
            ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=exp))
        try:
            expect_error(publish, 406,
                         "PRECONDITION_FAILED - invalid expiration '%s': %s" % (exp, why))
        except AssertionError as e:
            bad.append("expiration %r: %s" % (exp, e))
    with Client() as c:
        assert c.count(q) == 0, "a message with a bad expiration was enqueued"
    assert not bad, "\n    ".join([""] + bad)


def valid_expiration_forms():
    q = n("okexp")
    with Client() as c:
        c.ch.queue_declare(q)
        # Accepted: a sign, leading zeros, and up to ten years.
        for exp in ("+60000", "060000", "315360000000"):
            c.pub("", q, b"ok", expiration=exp)
        assert c.count(q) == 3


# Any declare, passive or not, renews a queue's x-expires lease, so these
# checks look once after waiting instead of polling.

def queue_expires():
    q, kept = n("expires"), n("expires-used")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-expires": 300})
        c.ch.queue_declare(kept, arguments={"x-expires": 300})
        cons = c.channel()
        tag = cons.basic_consume(kept, lambda *a: None)
        c.wait(EXPIRY_WAIT)
        # The consumer keeps it alive; the unused one is gone.
        c.ch.queue_declare(kept, passive=True)
        queue_gone(q)()
        cons.basic_cancel(tag)
        c.wait(EXPIRY_WAIT)
    queue_gone(kept)()


def queue_expires_with_messages():
    """Messages do not count as use: an unused queue with messages still expires."""
    q = n("expires-msgs")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-expires": 300})
        c.pub("", q, b"x")
        c.wait(EXPIRY_WAIT)
    queue_gone(q)()


def queue_expires_redeclare_renews():
    q = n("expires-renew")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-expires": 1000})
        for _ in range(8):
            c.wait(0.3)
            c.ch.queue_declare(q, passive=True)
        c.ch.queue_declare(q, arguments={"x-expires": 1000})
        c.wait(2.6)
    queue_gone(q)()


# ----------------------------------------------------------- length limits

def max_length_drop_head():
    q = n("maxlen")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-max-length": 2})
        for i in range(1, 5):
            c.pub("", q, b"m%d" % i)  # every publish is confirmed (acked)
        assert c.count(q) == 2
        assert c.drain(q) == ["m3", "m4"]
        q0 = n("maxlen0")
        c.ch.queue_declare(q0, arguments={"x-max-length": 0, "x-overflow": "drop-head"})
        c.pub("", q0, b"x")
        assert c.drain(q0) == []


def max_length_counts_ready_only():
    """Unacked messages do not count against x-max-length."""
    q, q2 = n("maxlen-unacked"), n("maxlen-unacked-rej")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-max-length": 2})
        c.pub("", q, b"1")
        c.pub("", q, b"2")
        m, _, _ = c.get(q, ack=False)
        c.pub("", q, b"3")
        assert c.count(q) == 2
        c.ch.basic_nack(m.delivery_tag, requeue=True)  # the requeue drops nothing...
        assert c.count(q) == 2
        c.pub("", q, b"4")  # ...the next publish trims to the limit
        assert c.drain(q) == ["3", "4"]
        c.ch.queue_declare(q2, arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        c.pub("", q2, b"1")
        c.pub("", q2, b"2")
        m, _, _ = c.get(q2, ack=False)
        c.pub("", q2, b"3")
        try:
            c.pub("", q2, b"4")
        except pika.exceptions.NackError:
            pass
        else:
            raise AssertionError("fourth publish acked with two ready messages")
        c.ch.basic_nack(m.delivery_tag, requeue=True)
        assert c.drain(q2) == ["1", "2", "3"]


def max_length_reject_publish():
    q = n("maxlen-rej")
    dlq = n("maxlen-rej-dlq")
    with Client() as c:
        c.ch.queue_declare(dlq)
        c.ch.queue_declare(q, arguments={"x-max-length": 2, "x-overflow": "reject-publish",
                                         "x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": dlq})
        c.pub("", q, b"m1")
        c.pub("", q, b"m2")
        try:
            c.pub("", q, b"m3")
        except pika.exceptions.NackError:
            pass
        else:
            raise AssertionError("publish over x-max-length with reject-publish was acked")
        assert c.drain(q) == ["m1", "m2"]
        assert c.drain(dlq) == [], "reject-publish must not dead-letter"
        c.pub("", q, b"m4")  # room again
        assert c.drain(q) == ["m4"]


def max_length_reject_publish_dlx():
    q = n("maxlen-rdlx")
    dlq = n("maxlen-rdlx-dlq")
    with Client() as c:
        c.ch.queue_declare(dlq)
        c.ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                         "x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": dlq})
        c.pub("", q, b"m1")
        try:
            c.pub("", q, b"m2")
        except pika.exceptions.NackError:
            pass
        else:
            raise AssertionError("publish over x-max-length with reject-publish-dlx was acked")
        assert c.drain(q) == ["m1"]
        m, props, body = c.get(dlq)
        assert body == b"m2", body
        check_death(props.headers["x-death"][0], "maxlen", q, "", [q])


def max_length_bytes():
    q = n("maxbytes")
    with Client() as c:
        c.ch.queue_declare(q, arguments={"x-max-length-bytes": 10})
        for body in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
            c.pub("", q, body, headers={"big-header": "x" * 100})  # only bodies count
        assert c.drain(q) == ["cccc", "dddd"]
        c.pub("", q, b"x" * 11)  # larger than the limit on its own
        assert c.drain(q) == []
        q2 = n("maxbytes-rej")
        c.ch.queue_declare(q2, arguments={"x-max-length-bytes": 5, "x-overflow": "reject-publish"})
        c.pub("", q2, b"12345")
        try:
            c.pub("", q2, b"6")
        except pika.exceptions.NackError:
            pass
        else:
            raise AssertionError("publish over x-max-length-bytes with reject-publish was acked")
        assert c.drain(q2) == ["12345"]


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


# ----------------------------------------------------------- invalid values

INVALID_ARGS = (
    ({"x-message-ttl": -1}, "invalid arg 'x-message-ttl' for queue '%s' in vhost '/': "
                            "{value_negative,-1}"),
    ({"x-message-ttl": "abc"}, "invalid arg 'x-message-ttl' for queue '%s' in vhost '/': "
                               "\"expected integer, got longstr\""),
    ({"x-message-ttl": True}, "invalid arg 'x-message-ttl' for queue '%s' in vhost '/': "
                              "\"expected integer, got bool\""),
    ({"x-message-ttl": 315360000001}, "invalid arg 'x-message-ttl' for queue '%s' in vhost "
                                      "'/': {value_too_large,315360000001}"),
    ({"x-expires": 0}, "invalid arg 'x-expires' for queue '%s' in vhost '/': {value_zero,0}"),
    ({"x-expires": 315360000001}, "invalid arg 'x-expires' for queue '%s' in vhost '/': "
                                  "{value_too_large,315360000001}"),
    ({"x-expires": -5}, "invalid arg 'x-expires' for queue '%s' in vhost '/': "
                        "{value_negative,-5}"),
    ({"x-expires": "x"}, "invalid arg 'x-expires' for queue '%s' in vhost '/': "
                         "\"expected integer, got longstr\""),
    ({"x-max-length": -1}, "invalid arg 'x-max-length' for queue '%s' in vhost '/': "
                           "{value_negative,-1}"),
    ({"x-max-length": "x"}, "invalid arg 'x-max-length' for queue '%s' in vhost '/': "
                            "\"expected integer, got longstr\""),
    ({"x-max-length-bytes": -1}, "invalid arg 'x-max-length-bytes' for queue '%s' in vhost "
                                 "'/': {value_negative,-1}"),
    ({"x-max-length-bytes": "x"}, "invalid arg 'x-max-length-bytes' for queue '%s' in vhost "
                                  "'/': \"expected integer, got longstr\""),
    ({"x-overflow": "foo"}, "invalid arg 'x-overflow' for queue '%s' in vhost '/': "
                            "invalid_overflow"),
    ({"x-overflow": 1}, "invalid arg 'x-overflow' for queue '%s' in vhost '/': "
                        "{unacceptable_type,signedint}"),
    ({"x-dead-letter-exchange": 1}, "invalid type 'signedint' for arg "
                                    "'x-dead-letter-exchange' in queue '%s' in vhost '/'"),
    ({"x-dead-letter-routing-key": 1}, "invalid arg 'x-dead-letter-routing-key' for queue "
                                       "'%s' in vhost '/': {unacceptable_type,signedint}"),
    ({"x-dead-letter-routing-key": "k"}, "invalid arg 'x-dead-letter-routing-key' for queue "
                                         "'%s' in vhost '/': routing_key_but_no_dlx_defined"),
    ({"x-max-priority": -1}, "invalid arg 'x-max-priority' for queue '%s' in vhost '/': "
                             "{value_negative,-1}"),
    ({"x-max-priority": 256}, "invalid arg 'x-max-priority' for queue '%s' in vhost '/': "
                              "{max_value_exceeded,256}"),
    ({"x-max-priority": "x"}, "invalid arg 'x-max-priority' for queue '%s' in vhost '/': "
                              "\"expected integer, got longstr\""),
    ({"x-single-active-consumer": 1}, "invalid arg 'x-single-active-consumer' for queue '%s' "
                                      "in vhost '/': {unacceptable_type,signedint}"),
    ({"x-single-active-consumer": "true"}, "invalid arg 'x-single-active-consumer' for queue "
                                           "'%s' in vhost '/': {unacceptable_type,longstr}"),
    ({"x-queue-mode": "foo"}, "invalid arg 'x-queue-mode' for queue '%s' in vhost '/': "
                              "\"unsupported queue mode 'foo'\""),
    ({"x-queue-type": "foo"}, "invalid arg 'x-queue-type' for queue '%s' in vhost '/': "
                              "\"unsupported queue type 'foo'\""),
)

VALID_ARGS = (
    {"x-message-ttl": 0}, {"x-message-ttl": 2 ** 32}, {"x-message-ttl": 315360000000},
    {"x-expires": 315360000000}, {"x-max-length": 0}, {"x-max-length": 2 ** 62},
    {"x-max-priority": 0}, {"x-max-priority": 255}, {"x-overflow": "reject-publish-dlx"},
    {"x-overflow": "drop-head"}, {"x-queue-type": "classic"}, {"x-queue-mode": "lazy"},
    {"x-dead-letter-exchange": n("not-declared-yet")}, {"x-single-active-consumer": False},
)


def invalid_argument_values():
    bad = []
    for i, (args, text) in enumerate(INVALID_ARGS):
        q = n("inv%d" % i)
        try:
            expect_error(lambda ch: ch.queue_declare(q, arguments=args), 406,
                         "PRECONDITION_FAILED - " + text % q)
            queue_gone(q)()
        except AssertionError as e:
            bad.append("%r: %s" % (args, e))
    assert not bad, "\n    ".join([""] + bad)


EQUIVALENCE = (
    ({"x-max-priority": 2}, {"x-max-priority": 3}, "x-max-priority",
     "received '3' but current is '2'"),
    ({"x-single-active-consumer": True}, {"x-single-active-consumer": False},
     "x-single-active-consumer", "received 'false' but current is 'true'"),
    ({"x-overflow": "drop-head"}, {"x-overflow": "reject-publish"}, "x-overflow",
     "received 'reject-publish' but current is 'drop-head'"),
    ({"x-dead-letter-exchange": "a"}, {"x-dead-letter-exchange": "b"},
     "x-dead-letter-exchange", "received 'b' but current is 'a'"),
    ({"x-message-ttl": 1000}, {"x-message-ttl": 2 ** 32}, "x-message-ttl",
     "received '4294967296' but current is '1000'"),
    ({"x-expires": 100000}, {"x-expires": 200000}, "x-expires",
     "received '200000' but current is '100000'"),
    ({"x-queue-mode": "lazy"}, {}, "x-queue-mode",
     "received none but current is the value 'lazy' of type 'longstr'"),
    ({"x-max-length-bytes": 10}, {"x-max-length-bytes": 10, "x-max-length": 5},
     "x-max-length", "received the value '5' of type 'signedint' but current is none"),
)


def argument_equivalence():
    bad = []
    for i, (first, second, arg, detail) in enumerate(EQUIVALENCE):
        q = n("eq%d" % i)
        with Client() as c:
            c.ch.queue_declare(q, arguments=first)
            c.ch.queue_declare(q, arguments=first)
        try:
            expect_error(lambda ch: ch.queue_declare(q, arguments=second), 406,
                         "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in vhost "
                         "'/': %s" % (arg, q, detail))
        except AssertionError as e:
            bad.append("%r then %r: %s" % (first, second, e))
    # x-queue-type classic is what an untyped queue is.
    with Client() as c:
        c.ch.queue_declare(n("eq-type"))
        c.ch.queue_declare(n("eq-type"), arguments={"x-queue-type": "classic"})
    assert not bad, "\n    ".join([""] + bad)


def valid_argument_values():
    with Client() as c:
        for i, args in enumerate(VALID_ARGS):
            q = n("val%d" % i)
            r = c.ch.queue_declare(q, arguments=args)
            assert r.method.queue == q
            c.ch.queue_delete(q)


for name, fn in [
    ("x-message-ttl", message_ttl),
    ("x-message-ttl 0", message_ttl_zero),
    ("per-message expiration", per_message_expiration),
    ("expired message behind the head", per_message_expiration_behind_head),
    ("queue and message TTL: lower wins", queue_and_message_ttl_lower_wins),
    ("invalid expiration property", invalid_expiration),
    ("valid expiration forms", valid_expiration_forms),
    ("x-expires", queue_expires),
    ("x-expires with messages", queue_expires_with_messages),
    ("x-expires renewed by declare", queue_expires_redeclare_renews),
    ("x-max-length drop-head", max_length_drop_head),
    ("x-max-length counts ready messages only", max_length_counts_ready_only),
    ("x-max-length reject-publish", max_length_reject_publish),
    ("x-max-length reject-publish-dlx", max_length_reject_publish_dlx),
    ("x-max-length-bytes", max_length_bytes),
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
    ("invalid argument values", invalid_argument_values),
    ("valid argument values", valid_argument_values),
    ("argument equivalence", argument_equivalence),
]:
    R.run(name, fn)
sys.exit(R.finish())
