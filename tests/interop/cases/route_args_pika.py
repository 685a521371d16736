# timeout: 120
"""Queue arguments with python3-pika: message TTLs and expiration, queue
expiry, length limits and overflow modes, the 406 texts for invalid argument
values and for inequivalent redeclarations.  Dead lettering, priorities and
single active consumer are in route_dlx_pika.py, which imports the helpers
below; this file's checks run only when it is run as the case.

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


def main():
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
        ("invalid argument values", invalid_argument_values),
        ("valid argument values", valid_argument_values),
        ("argument equivalence", argument_equivalence),
    ]:
        R.run(name, fn)
    sys.exit(R.finish())


if __name__ == "__main__":
    main()
