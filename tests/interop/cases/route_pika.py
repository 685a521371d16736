# timeout: 120
"""Routing with python3-pika: exchanges and bindings, end to end (direct,
fanout, topic, headers, exchange-to-exchange, alternate exchanges).  Queue
lifetimes and errors are in route_queue_pika.py, which imports the helpers
below; this file's checks run only when it is run as the case.

Every expected reply code and text below was taken from RabbitMQ 3.10.8
(Debian's rabbitmq-server) running the same calls; the case runs against
Warren only.  Names carry a per-run suffix so the case can also be pointed
at a long-lived broker (WARREN_PORT=... /usr/bin/python3 route_pika.py) to
re-check the expectations against RabbitMQ."""

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

LOCKED = ("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in "
          "vhost '/'. It could be originally declared on another connection or the "
          "exclusive property value does not match that of the original declaration.")
DEFAULT_X = "ACCESS_REFUSED - operation not permitted on the default exchange"


def n(base):
    """A name unique to this run."""
    return "%s-%s" % (base, RUN)


class Client:
    """One connection with a confirming channel, closed when the check ends."""

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

    def wait(self, seconds):
        """Serve the connection for this long (process_data_events returns early on input)."""
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            self.conn.process_data_events(left)

    def pub(self, exchange, key, body, **props):
        mandatory = props.pop("mandatory", False)
        self.ch.basic_publish(exchange, key, body, pika.BasicProperties(**props),
                              mandatory=mandatory)

    def drain(self, queue):
        """Bodies of every ready message in queue, in order, acked."""
        out = []
        while True:
            m, _, body = self.ch.basic_get(queue, auto_ack=True)
            if m is None:
                return out
            out.append(body.decode())

    def get(self, queue):
        m, props, body = self.ch.basic_get(queue, auto_ack=True)
        assert m is not None, "queue %s is empty" % queue
        return m, props, body


def expect_error(fn, code, text, connection=False):
    """Run fn(channel) on a fresh connection; it must fail with (code, text)."""
    with Client() as c:
        ch = c.channel()
        try:
            fn(ch)
        except pika.exceptions.ChannelClosedByBroker as e:
            assert not connection, "channel closed %d %r, expected connection.close" % (
                e.reply_code, e.reply_text)
            got = (e.reply_code, e.reply_text)
        except pika.exceptions.ConnectionClosedByBroker as e:
            assert connection, "connection closed %d %r, expected channel.close" % (
                e.reply_code, e.reply_text)
            got = (e.reply_code, e.reply_text)
        else:
            raise AssertionError("succeeded, expected %d %r" % (code, text))
        assert got == (code, text), "expected %d %r, got %d %r" % (code, text, got[0], got[1])


def eventually(fn, timeout=3.0):
    """Retry fn until it stops raising AssertionError (broker-side cleanup is async)."""
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def queue_gone(name):
    def check():
        expect_error(lambda ch: ch.queue_declare(name, passive=True), 404,
                     "NOT_FOUND - no queue '%s' in vhost '/'" % name)
    return check


def exchange_gone(name):
    def check():
        expect_error(lambda ch: ch.exchange_declare(name, passive=True), 404,
                     "NOT_FOUND - no exchange '%s' in vhost '/'" % name)
    return check


def queue_exists(name):
    with Client() as c:
        c.ch.queue_declare(name, passive=True)


def exchange_exists(name):
    with Client() as c:
        c.ch.exchange_declare(name, passive=True)


# ---------------------------------------------------------------- exchanges

def exchange_declare_each_type():
    with Client() as c:
        for t in ("direct", "fanout", "topic", "headers"):
            name = n("ex-" + t)
            r = c.ch.exchange_declare(name, t)
            assert isinstance(r.method, pika.spec.Exchange.DeclareOk), r
            c.ch.exchange_declare(name, t)  # same again: fine
            c.ch.exchange_declare(name, passive=True)
            c.ch.exchange_declare(name + "-d", t, durable=True, auto_delete=False)
            c.ch.exchange_declare(name + "-d", passive=True)


def exchange_passive_missing():
    name = n("nosuch")
    expect_error(lambda ch: ch.exchange_declare(name, passive=True), 404,
                 "NOT_FOUND - no exchange '%s' in vhost '/'" % name)


def exchange_passive_ignores_type():
    name = n("ex-pt")
    with Client() as c:
        c.ch.exchange_declare(name, "direct")
        c.ch.exchange_declare(name, "fanout", passive=True)
        c.ch.exchange_declare(name, "topic", passive=True, durable=True)


def exchange_redeclare_type():
    name = n("ex-rt")
    with Client() as c:
        c.ch.exchange_declare(name, "direct")
    expect_error(lambda ch: ch.exchange_declare(name, "fanout"), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%s' in vhost "
                 "'/': received 'fanout' but current is 'direct'" % name)


def exchange_redeclare_flags():
    name = n("ex-rf")
    with Client() as c:
        c.ch.exchange_declare(name, "topic")
    for flag, kw in (("durable", {"durable": True}), ("auto_delete", {"auto_delete": True}),
                     ("internal", {"internal": True})):
        expect_error(lambda ch: ch.exchange_declare(name, "topic", **kw), 406,
                     "PRECONDITION_FAILED - inequivalent arg '%s' for exchange '%s' in vhost "
                     "'/': received 'true' but current is 'false'" % (flag, name))
    # Other arguments are not compared.
    with Client() as c:
        c.ch.exchange_declare(name, "topic", arguments={"x-whatever": 1})


def exchange_reserved_names():
    expect_error(lambda ch: ch.exchange_declare("amq.foo-" + RUN, "direct"), 403,
                 "ACCESS_REFUSED - exchange name 'amq.foo-%s' contains reserved prefix "
                 "'amq.*'" % RUN)
    expect_error(lambda ch: ch.queue_declare("amq.q-" + RUN), 403,
                 "ACCESS_REFUSED - queue name 'amq.q-%s' contains reserved prefix "
                 "'amq.*'" % RUN)
    expect_error(lambda ch: ch.queue_declare("amq.gen-" + RUN), 403,
                 "ACCESS_REFUSED - queue name 'amq.gen-%s' contains reserved prefix "
                 "'amq.*'" % RUN)
    # A passive declare of a missing amq.* queue is just not found.
    expect_error(lambda ch: ch.queue_declare("amq.q-" + RUN, passive=True), 404,
                 "NOT_FOUND - no queue 'amq.q-%s' in vhost '/'" % RUN)


def exchange_unknown_type():
    expect_error(lambda ch: ch.exchange_declare(n("ex-bad"), "x-nonsense"), 503,
                 "COMMAND_INVALID - unknown exchange type 'x-nonsense'", connection=True)


def exchange_default_untouchable():
    expect_error(lambda ch: ch.exchange_declare("", "direct"), 403, DEFAULT_X)
    expect_error(lambda ch: ch.exchange_declare("", passive=True), 403, DEFAULT_X)
    expect_error(lambda ch: ch.exchange_delete(""), 403, DEFAULT_X)
    q = n("dq")
    with Client() as c:
        c.ch.queue_declare(q)
    expect_error(lambda ch: ch.queue_bind(q, "", q), 403, DEFAULT_X)
    expect_error(lambda ch: ch.queue_unbind(q, "", q), 403, DEFAULT_X)
    expect_error(lambda ch: ch.exchange_bind(n("any"), "", "k"), 403, DEFAULT_X)
    expect_error(lambda ch: ch.exchange_bind("", "amq.direct", "k"), 403, DEFAULT_X)
    # amq.default is only a name in the management UI, not an exchange.
    expect_error(lambda ch: ch.queue_bind(q, "amq.default", q), 404,
                 "NOT_FOUND - no exchange 'amq.default' in vhost '/'")


PREDECLARED = (("amq.direct", "direct", False), ("amq.fanout", "fanout", False),
               ("amq.topic", "topic", False), ("amq.headers", "headers", False),
               ("amq.match", "headers", False), ("amq.rabbitmq.trace", "topic", True))


def predeclared_exchanges():
    with Client() as c:
        for name, t, internal in PREDECLARED:
            c.ch.exchange_declare(name, passive=True)
            # Redeclaring with the same properties is allowed despite the prefix.
            c.ch.exchange_declare(name, t, durable=True, internal=internal)
    expect_error(lambda ch: ch.exchange_declare("amq.direct", "direct"), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.direct' "
                 "in vhost '/': received 'false' but current is 'true'")
    expect_error(lambda ch: ch.exchange_declare("amq.topic", "fanout", durable=True), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.topic' in "
                 "vhost '/': received 'fanout' but current is 'topic'")
    expect_error(lambda ch: ch.exchange_declare("amq.direct", "direct", durable=True,
                                                internal=True), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange "
                 "'amq.direct' in vhost '/': received 'true' but current is 'false'")


def predeclared_cannot_be_deleted():
    for name, _, _ in PREDECLARED:
        expect_error(lambda ch: ch.exchange_delete(name), 403,
                     "ACCESS_REFUSED - deletion of system exchange '%s' in vhost '/' not "
                     "allowed" % name)
        exchange_exists(name)


def predeclared_exchanges_route():
    q = n("pq")
    with Client() as c:
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, "amq.direct", "d")
        c.ch.queue_bind(q, "amq.fanout", "ignored")
        c.ch.queue_bind(q, "amq.topic", "t.*")
        c.ch.queue_bind(q, "amq.headers", arguments={"x-match": "any", "h": "1"})
        c.ch.queue_bind(q, "amq.match", arguments={"m": "1"})
        c.pub("amq.direct", "d", b"direct")
        c.pub("amq.fanout", "whatever", b"fanout")
        c.pub("amq.topic", "t.x", b"topic")
        c.pub("amq.headers", "", b"headers", headers={"h": "1"})
        c.pub("amq.match", "", b"match", headers={"m": "1"})
        c.pub("amq.direct", "not-d", b"lost")
        got = c.drain(q)
        assert got == ["direct", "fanout", "topic", "headers", "match"], got


def exchange_delete_if_unused():
    x, q = n("ex-iu"), n("q-iu")
    with Client() as c:
        c.ch.exchange_declare(x, "direct")
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x, "k")
    expect_error(lambda ch: ch.exchange_delete(x, if_unused=True), 406,
                 "PRECONDITION_FAILED - exchange '%s' in vhost '/' in use" % x)
    exchange_exists(x)
    with Client() as c:
        c.ch.queue_unbind(q, x, "k")
        c.ch.exchange_delete(x, if_unused=True)
    exchange_gone(x)()


def exchange_delete_if_unused_e2e():
    src, dst = n("ex-src"), n("ex-dst")
    with Client() as c:
        c.ch.exchange_declare(src, "fanout")
        c.ch.exchange_declare(dst, "fanout")
        c.ch.exchange_bind(dst, src)
    # Only bindings with the exchange as source count as "in use".
    expect_error(lambda ch: ch.exchange_delete(src, if_unused=True), 406,
                 "PRECONDITION_FAILED - exchange '%s' in vhost '/' in use" % src)
    with Client() as c:
        c.ch.exchange_delete(dst, if_unused=True)
        c.ch.exchange_delete(src, if_unused=True)
    exchange_gone(src)()
    exchange_gone(dst)()


def delete_missing_succeeds():
    with Client() as c:
        c.ch.exchange_delete(n("never-x"))
        c.ch.exchange_delete(n("never-x"), if_unused=True)
        r = c.ch.queue_delete(n("never-q"))
        assert r.method.message_count == 0, r
        r = c.ch.queue_delete(n("never-q"), if_unused=True, if_empty=True)
        assert r.method.message_count == 0, r
        # Unbinding something that was never bound, from things that do not exist.
        c.ch.queue_unbind(n("never-q"), n("never-x"), "k")
        c.ch.exchange_unbind(n("never-x"), "amq.direct", "k")


def exchange_delete_drops_bindings():
    x, q = n("ex-dd"), n("q-dd")
    with Client() as c:
        c.ch.exchange_declare(x, "fanout")
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x)
        c.ch.exchange_bind(x, "amq.fanout")
        c.ch.exchange_delete(x)
        c.ch.exchange_declare(x, "fanout")
        c.pub(x, "", b"a")
        c.pub("amq.fanout", "", b"b")
        assert c.drain(q) == [], "bindings survived the exchange's deletion"


def internal_exchange():
    x, q = n("ex-int"), n("q-int")
    with Client() as c:
        c.ch.exchange_declare(x, "fanout", internal=True)
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x)
        c.ch.exchange_bind(x, "amq.fanout")
        # Reachable through an exchange-to-exchange binding...
        c.pub("amq.fanout", "", b"via-e2e")
        assert c.drain(q) == ["via-e2e"]
        c.ch.exchange_unbind(x, "amq.fanout")
    # ...but not directly.
    expect_error(lambda ch: (ch.confirm_delivery(), ch.basic_publish(x, "", b"direct")), 403,
                 "ACCESS_REFUSED - cannot publish to internal exchange '%s' in vhost '/'" % x)


def auto_delete_exchange():
    x, q = n("ex-ad"), n("q-ad")
    with Client() as c:
        c.ch.exchange_declare(x, "fanout", auto_delete=True)
        c.ch.queue_declare(q)
    exchange_exists(x)  # never bound: stays
    with Client() as c:
        c.ch.queue_bind(q, x)
        c.ch.queue_unbind(q, x)
    eventually(exchange_gone(x))
    # Deleting the last bound queue also removes it.
    with Client() as c:
        c.ch.exchange_declare(x, "fanout", auto_delete=True)
        c.ch.queue_bind(q, x)
        c.ch.queue_delete(q)
    eventually(exchange_gone(x))
    # So does removing its last exchange-to-exchange binding as source.
    d = n("ex-ad-d")
    with Client() as c:
        c.ch.exchange_declare(x, "fanout", auto_delete=True)
        c.ch.exchange_declare(d, "fanout")
        c.ch.exchange_bind(d, x)
        c.ch.exchange_unbind(d, x)
    eventually(exchange_gone(x))
    # Being the destination of a binding does not count.
    with Client() as c:
        c.ch.exchange_declare(x, "fanout", auto_delete=True)
        c.ch.exchange_bind(x, d)
        c.ch.exchange_unbind(x, d)
    exchange_exists(x)


def publish_missing_exchange():
    x = n("nosuch-pub")
    expect_error(lambda ch: (ch.confirm_delivery(), ch.basic_publish(x, "k", b"x")), 404,
                 "NOT_FOUND - no exchange '%s' in vhost '/'" % x)


# ------------------------------------------------------------------ routing

def direct_routing():
    x = n("rx-direct")
    q1, q2, q3 = n("rd1"), n("rd2"), n("rd3")
    with Client() as c:
        c.ch.exchange_declare(x, "direct")
        for q in (q1, q2, q3):
            c.ch.queue_declare(q)
        c.ch.queue_bind(q1, x, "k1")
        c.ch.queue_bind(q2, x, "k1")
        c.ch.queue_bind(q2, x, "k2")
        c.ch.queue_bind(q2, x, "k2")  # duplicate binding: one copy, not two
        c.ch.queue_bind(q3, x, "")
        for key in ("k1", "k2", "k3", "", "K1"):
            c.pub(x, key, ("m-" + key).encode())
        assert c.drain(q1) == ["m-k1"], "q1"
        assert c.drain(q2) == ["m-k1", "m-k2"], "q2"
        assert c.drain(q3) == ["m-"], "q3"


def default_exchange_routing():
    q = n("rdef")
    with Client() as c:
        c.ch.queue_declare(q)
        c.pub("", q, b"hello")
        c.pub("", q + "-not", b"lost")
        m, _, body = c.get(q)
        assert (m.exchange, m.routing_key, body) == ("", q, b"hello"), m
        assert c.drain(q) == []


def fanout_routing():
    x = n("rx-fanout")
    qs = [n("rf%d" % i) for i in range(3)]
    with Client() as c:
        c.ch.exchange_declare(x, "fanout")
        for i, q in enumerate(qs):
            c.ch.queue_declare(q)
            c.ch.queue_bind(q, x, "key%d" % i)  # keys are ignored
        c.pub(x, "anything", b"one")
        c.pub(x, "", b"two")
        for q in qs:
            assert c.drain(q) == ["one", "two"], q
        c.ch.queue_unbind(qs[1], x, "key1")
        c.ch.queue_unbind(qs[2], x, "other")  # not this binding's key: no-op
        c.pub(x, "x", b"three")
        assert [c.drain(q) for q in qs] == [["three"], [], ["three"]]


# Which routing keys reach a queue bound with each pattern, as RabbitMQ routes them.
TOPIC_KEYS = ("a.b.c", "a.c", "a", "", "a.b.b.c", "x.b.c", "a..c", "b", "a.b", "a.b.c.d")
TOPIC_TABLE = {
    "a.b.c": ["a.b.c"],
    "a.*.c": ["a.b.c", "a..c"],
    "a.#": ["a.b.c", "a.c", "a", "a.b.b.c", "a..c", "a.b", "a.b.c.d"],
    "#": list(TOPIC_KEYS),
    "*": ["a", "b"],
    "#.c": ["a.b.c", "a.c", "a.b.b.c", "x.b.c", "a..c"],
    "a.#.c": ["a.b.c", "a.c", "a.b.b.c", "a..c"],
    "*.*": ["a.c", "a.b"],
    "": [""],
    "*.b.*": ["a.b.c", "x.b.c"],
    "#.#": list(TOPIC_KEYS),
    "a.*.#": ["a.b.c", "a.c", "a.b.b.c", "a..c", "a.b", "a.b.c.d"],
    "#.b.#": ["a.b.c", "a.b.b.c", "x.b.c", "b", "a.b", "a.b.c.d"],
    "*.#.*": ["a.b.c", "a.c", "a.b.b.c", "x.b.c", "a..c", "a.b", "a.b.c.d"],
}


def topic_routing():
    x = n("rx-topic")
    with Client() as c:
        c.ch.exchange_declare(x, "topic")
        qs = {}
        for i, pattern in enumerate(TOPIC_TABLE):
            q = qs[pattern] = n("rt%d" % i)
            c.ch.queue_declare(q)
            c.ch.queue_bind(q, x, pattern)
        for key in TOPIC_KEYS:
            c.pub(x, key, key.encode())
        bad = []
        for pattern, q in qs.items():
            got = c.drain(q)
            if got != TOPIC_TABLE[pattern]:
                bad.append("%r got %r, expected %r" % (pattern, got, TOPIC_TABLE[pattern]))
        assert not bad, "; ".join(bad)


def topic_overlapping_patterns():
    x, q = n("rx-topic2"), n("rt-ov")
    with Client() as c:
        c.ch.exchange_declare(x, "topic")
        c.ch.queue_declare(q)
        for p in ("#", "a.*", "a.b", "*.b", "a.#"):
            c.ch.queue_bind(q, x, p)
        c.pub(x, "a.b", b"once")
        assert c.drain(q) == ["once"], "a queue matched by several patterns gets one copy"
        c.ch.queue_unbind(q, x, "#")
        c.pub(x, "z.z.z", b"none")
        c.pub(x, "z.b", b"zb")
        assert c.drain(q) == ["zb"]


# Binding arguments -> which published messages reach the queue.
HEADER_MSGS = (
    ("ab", {"a": "1", "b": "2"}),
    ("a", {"a": "1"}),
    ("bc", {"b": "2", "c": "3"}),
    ("empty", {}),
    ("none", None),
    ("n-int", {"n": 1}),
    ("n-str", {"n": "1"}),
    ("p", {"p": "anything"}),
    ("a-b3", {"a": "1", "b": "3"}),
    ("xfoo", {"x-foo": "bar"}),
)
HEADER_TABLE = (
    ({"x-match": "all", "a": "1", "b": "2"}, ["ab"]),
    ({"x-match": "any", "a": "1", "b": "2"}, ["ab", "a", "bc", "a-b3"]),
    ({"a": "1", "b": "2"}, ["ab"]),
    ({}, ["ab", "a", "bc", "empty", "none", "n-int", "n-str", "p", "a-b3", "xfoo"]),
    ({"x-match": "any"}, []),
    ({"x-match": "all", "n": 1}, ["n-int"]),
    ({"x-match": "all", "n": "1"}, ["n-str"]),
    ({"x-match": "all", "p": None}, ["p"]),
    ({"x-match": "any", "c": "3", "n": 1}, ["bc", "n-int"]),
    ({"x-match": "all", "x-foo": "bar"},
     ["ab", "a", "bc", "empty", "none", "n-int", "n-str", "p", "a-b3", "xfoo"]),
    ({"x-match": "any", "x-foo": "bar"}, []),
    ({"x-match": "all-with-x", "x-foo": "bar"}, ["xfoo"]),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": "1"}, ["ab", "a", "a-b3", "xfoo"]),
)


def headers_routing():
    x = n("rx-headers")
    with Client() as c:
        c.ch.exchange_declare(x, "headers")
        qs = []
        for i, (args, _) in enumerate(HEADER_TABLE):
            q = n("rh%d" % i)
            qs.append(q)
            c.ch.queue_declare(q)
            c.ch.queue_bind(q, x, "ignored-key", arguments=args)
        for name, headers in HEADER_MSGS:
            c.pub(x, "whatever", name.encode(), headers=headers)
        bad = []
        for q, (args, want) in zip(qs, HEADER_TABLE):
            got = c.drain(q)
            if got != want:
                bad.append("%r got %r, expected %r" % (args, got, want))
        assert not bad, "; ".join(bad)


def headers_bad_x_match():
    x, q = n("rx-hbad"), n("rh-bad")
    with Client() as c:
        c.ch.exchange_declare(x, "headers")
        c.ch.queue_declare(q)
    expect_error(lambda ch: ch.queue_bind(q, x, arguments={"x-match": "foo"}), 406,
                 "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected "
                 "all, any, all-with-x, or any-with-x")
    expect_error(lambda ch: ch.queue_bind(q, x, arguments={"x-match": 1}), 406,
                 "PRECONDITION_FAILED - Invalid x-match field type signedint (value 1); "
                 "expected longstr")


def headers_unbind_by_arguments():
    x, q = n("rx-hun"), n("rh-un")
    with Client() as c:
        c.ch.exchange_declare(x, "headers")
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x, "", arguments={"a": "1"})
        c.ch.queue_bind(q, x, "", arguments={"b": "2"})
        c.ch.queue_unbind(q, x, "", arguments={"a": "1"})
        c.pub(x, "", b"a", headers={"a": "1"})
        c.pub(x, "", b"b", headers={"b": "2"})
        assert c.drain(q) == ["b"], "unbind must remove only the binding with those arguments"


def cc_and_bcc():
    x = n("rx-cc")
    q1, q2, q3 = n("rcc1"), n("rcc2"), n("rcc3")
    with Client() as c:
        c.ch.exchange_declare(x, "direct")
        for q, k in ((q1, "k1"), (q2, "k2"), (q3, "k3")):
            c.ch.queue_declare(q)
            c.ch.queue_bind(q, x, k)
        c.pub(x, "k1", b"m", headers={"CC": ["k2", "k1"], "BCC": ["k3"], "h": "v"})
        results = [c.get(q) for q in (q1, q2, q3)]
        for m, props, body in results:
            assert body == b"m" and m.routing_key == "k1", (m, body)
            assert props.headers == {"CC": ["k2", "k1"], "h": "v"}, props.headers
        assert [c.drain(q) for q in (q1, q2, q3)] == [[], [], []], "copies were duplicated"


def mandatory_unroutable():
    with Client() as c:
        try:
            c.pub("amq.direct", n("nobody"), b"lost", mandatory=True)
        except pika.exceptions.UnroutableError as e:
            ret = e.messages[0]
            assert (ret.method.reply_code, ret.method.reply_text) == (312, "NO_ROUTE"), ret
            assert (ret.method.exchange, ret.method.routing_key) == ("amq.direct", n("nobody"))
            assert ret.body == b"lost"
        else:
            raise AssertionError("unroutable mandatory message not returned")
        c.pub("amq.direct", n("nobody"), b"dropped")  # no mandatory: silently dropped


def e2e_bindings():
    top, mid, leaf = n("e2e-top"), n("e2e-mid"), n("e2e-leaf")
    qm, ql = n("e2e-qm"), n("e2e-ql")
    with Client() as c:
        c.ch.exchange_declare(top, "topic")
        c.ch.exchange_declare(mid, "direct")
        c.ch.exchange_declare(leaf, "fanout")
        c.ch.exchange_bind(mid, top, "a.*")
        c.ch.exchange_bind(leaf, mid, "a.x")
        c.ch.queue_declare(qm)
        c.ch.queue_declare(ql)
        c.ch.queue_bind(qm, mid, "a.y")
        c.ch.queue_bind(ql, leaf)
        c.pub(top, "a.x", b"ax")
        c.pub(top, "a.y", b"ay")
        c.pub(top, "a.z", b"az")
        c.pub(top, "b.x", b"bx")
        c.pub(mid, "a.x", b"mid-ax")
        assert c.drain(qm) == ["ay"]
        assert c.drain(ql) == ["ax", "mid-ax"]
        c.pub(top, "a.x", b"again")
        m, _, _ = c.get(ql)
        # Delivered with the exchange and key it was published with.
        assert (m.exchange, m.routing_key) == (top, "a.x"), m
        c.ch.exchange_unbind(leaf, mid, "a.x")
        c.pub(top, "a.x", b"gone")
        assert c.drain(ql) == []


def e2e_loop():
    a, b, cx = n("loop-a"), n("loop-b"), n("loop-c")
    qa, qb, qc = n("loop-qa"), n("loop-qb"), n("loop-qc")
    with Client() as c:
        for x in (a, b, cx):
            c.ch.exchange_declare(x, "fanout")
        c.ch.exchange_bind(b, a)
        c.ch.exchange_bind(cx, b)
        c.ch.exchange_bind(a, cx)  # a -> b -> c -> a
        c.ch.exchange_bind(a, a)   # and a self-loop
        for q, x in ((qa, a), (qb, b), (qc, cx)):
            c.ch.queue_declare(q)
            c.ch.queue_bind(q, x)
        c.ch.queue_bind(qc, a)     # qc reachable two ways
        c.pub(b, "k", b"loop")
        assert [c.drain(q) for q in (qa, qb, qc)] == [["loop"]] * 3


def alternate_exchange():
    x, ae = n("ae-main"), n("ae-alt")
    qm, qa = n("ae-qm"), n("ae-qa")
    with Client() as c:
        c.ch.exchange_declare(ae, "fanout")
        c.ch.exchange_declare(x, "direct", arguments={"alternate-exchange": ae})
        c.ch.queue_declare(qm)
        c.ch.queue_declare(qa)
        c.ch.queue_bind(qm, x, "k")
        c.ch.queue_bind(qa, ae)
        c.pub(x, "k", b"routed")
        c.pub(x, "other", b"alt", mandatory=True)  # taken by the AE: not returned
        assert c.drain(qm) == ["routed"]
        m, _, body = c.get(qa)
        assert (m.exchange, m.routing_key, body) == (x, "other", b"alt"), m
        assert c.drain(qa) == []


def alternate_exchange_chain_and_missing():
    x1, x2, x3 = n("ae-c1"), n("ae-c2"), n("ae-c3")
    q = n("ae-cq")
    with Client() as c:
        c.ch.exchange_declare(x3, "topic")
        c.ch.exchange_declare(x2, "direct", arguments={"alternate-exchange": x3})
        c.ch.exchange_declare(x1, "direct", arguments={"alternate-exchange": x2})
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x3, "#")
        c.pub(x1, "nowhere", b"chained")
        assert c.drain(q) == ["chained"]
        # An AE that does not exist: the message is unroutable.
        missing = n("ae-missing")
        xm = n("ae-m")
        c.ch.exchange_declare(xm, "direct", arguments={"alternate-exchange": missing})
        try:
            c.pub(xm, "k", b"lost", mandatory=True)
        except pika.exceptions.UnroutableError as e:
            assert e.messages[0].method.reply_code == 312
        else:
            raise AssertionError("message to a missing AE not returned")


def alternate_exchange_cycle():
    x1, x2 = n("ae-cy1"), n("ae-cy2")
    with Client() as c:
        c.ch.exchange_declare(x1, "direct", arguments={"alternate-exchange": x2})
        c.ch.exchange_declare(x2, "direct", arguments={"alternate-exchange": x1})
        try:
            c.pub(x1, "k", b"cycle", mandatory=True)
        except pika.exceptions.UnroutableError as e:
            assert e.messages[0].method.reply_code == 312
        else:
            raise AssertionError("message looping through AEs not returned")


def alternate_exchange_equivalence():
    x = n("ae-eq")
    with Client() as c:
        c.ch.exchange_declare(x, "direct", arguments={"alternate-exchange": "x1"})
    expect_error(lambda ch: ch.exchange_declare(x, "direct",
                                                arguments={"alternate-exchange": "x2"}), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
                 "'%s' in vhost '/': received 'x2' but current is 'x1'" % x)
    expect_error(lambda ch: ch.exchange_declare(x, "direct"), 406,
                 "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
                 "'%s' in vhost '/': received none but current is the value 'x1' of type "
                 "'longstr'" % x)
    y = n("ae-int")
    expect_error(lambda ch: ch.exchange_declare(y, "direct",
                                                arguments={"alternate-exchange": 5}), 406,
                 "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' "
                 "in exchange '%s' in vhost '/'" % y)


def alternate_exchange_with_e2e():
    """The AE of the exchange where routing ran dry is used, not the source's."""
    src, dst, alt1, alt2 = n("aee-src"), n("aee-dst"), n("aee-alt1"), n("aee-alt2")
    q1, q2 = n("aee-q1"), n("aee-q2")
    with Client() as c:
        c.ch.exchange_declare(alt1, "fanout")
        c.ch.exchange_declare(alt2, "fanout")
        c.ch.queue_declare(q1)
        c.ch.queue_declare(q2)
        c.ch.queue_bind(q1, alt1)
        c.ch.queue_bind(q2, alt2)
        c.ch.exchange_declare(src, "direct", arguments={"alternate-exchange": alt1})
        c.ch.exchange_declare(dst, "direct")
        c.ch.exchange_bind(dst, src, "k")
        c.pub(src, "k", b"to-empty-dst")  # src routed it (to dst): no AE
        c.pub(src, "z", b"unbound-key")
        assert (c.drain(q1), c.drain(q2)) == (["unbound-key"], []), "src AE"
        try:
            c.pub(src, "k", b"mandatory", mandatory=True)
        except pika.exceptions.UnroutableError:
            pass
        else:
            raise AssertionError("routed into an empty destination exchange, not returned")
        c.ch.exchange_delete(dst)
        c.ch.exchange_declare(dst, "direct", arguments={"alternate-exchange": alt2})
        c.ch.exchange_bind(dst, src, "k")
        c.pub(src, "k", b"dst-ae", mandatory=True)  # taken by dst's AE: not returned
        assert (c.drain(q1), c.drain(q2)) == ([], ["dst-ae"]), "dst AE"


def alternate_exchange_special():
    x, ae, q = n("aes-x"), n("aes-ae"), n("aes-q")
    with Client() as c:
        # An internal exchange works as an AE.
        c.ch.exchange_declare(ae, "fanout", internal=True)
        c.ch.exchange_declare(x, "direct", arguments={"alternate-exchange": ae})
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, ae)
        c.pub(x, "k", b"via-internal-ae")
        assert c.drain(q) == ["via-internal-ae"]
        # Deleting the AE is allowed; afterwards the message is unroutable.
        c.ch.exchange_delete(ae)
        try:
            c.pub(x, "k", b"lost", mandatory=True)
        except pika.exceptions.UnroutableError:
            pass
        else:
            raise AssertionError("message to a deleted AE not returned")


def bindings_with_arguments_are_distinct():
    q = n("bargs")
    with Client() as c:
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, "amq.direct", q, arguments={"a": 1})
        c.ch.queue_bind(q, "amq.direct", q, arguments={"b": 1})
        c.pub("amq.direct", q, b"once")
        assert c.drain(q) == ["once"]
        c.ch.queue_unbind(q, "amq.direct", q, arguments={"a": 1})
        c.pub("amq.direct", q, b"b-binding-left")
        assert c.drain(q) == ["b-binding-left"]
        c.ch.queue_unbind(q, "amq.direct", q)  # no arguments: another binding again
        c.pub("amq.direct", q, b"still")
        assert c.drain(q) == ["still"]
        c.ch.queue_unbind(q, "amq.direct", q, arguments={"b": 1})
        c.pub("amq.direct", q, b"gone")
        assert c.drain(q) == []


def topic_many_words():
    """Long keys against patterns full of '#' route correctly and quickly."""
    x, q = n("rx-topic-long"), n("rt-long")
    pattern = "#.a.#.b.#.c.#.d.#"
    with Client() as c:
        c.ch.exchange_declare(x, "topic")
        c.ch.queue_declare(q)
        c.ch.queue_bind(q, x, pattern)
        miss = ".".join(["a", "b", "c"] * 20)            # 60 words, no "d"
        hit = ".".join(["a", "b", "c"] * 20 + ["d"])
        t0 = time.time()
        for _ in range(5):
            c.pub(x, miss, b"miss")
        c.pub(x, hit, b"hit")
        elapsed = time.time() - t0
        assert c.drain(q) == ["hit"]
        assert elapsed < 5, "routing took %.1f s" % elapsed


def main():
    for name, fn in [
        ("exchange.declare each type", exchange_declare_each_type),
        ("exchange.declare passive, missing", exchange_passive_missing),
        ("exchange.declare passive ignores type", exchange_passive_ignores_type),
        ("exchange.declare different type", exchange_redeclare_type),
        ("exchange.declare different flags", exchange_redeclare_flags),
        ("reserved amq. names", exchange_reserved_names),
        ("unknown exchange type", exchange_unknown_type),
        ("default exchange is untouchable", exchange_default_untouchable),
        ("predeclared amq.* exchanges", predeclared_exchanges),
        ("predeclared exchanges cannot be deleted", predeclared_cannot_be_deleted),
        ("predeclared exchanges route", predeclared_exchanges_route),
        ("exchange.delete if-unused", exchange_delete_if_unused),
        ("exchange.delete if-unused, e2e bindings", exchange_delete_if_unused_e2e),
        ("deleting missing things succeeds", delete_missing_succeeds),
        ("exchange.delete drops its bindings", exchange_delete_drops_bindings),
        ("internal exchange", internal_exchange),
        ("auto-delete exchange", auto_delete_exchange),
        ("publish to a missing exchange", publish_missing_exchange),
        ("direct routing", direct_routing),
        ("default exchange routing", default_exchange_routing),
        ("fanout routing", fanout_routing),
        ("topic routing table", topic_routing),
        ("topic overlapping patterns", topic_overlapping_patterns),
        ("headers routing table", headers_routing),
        ("headers bad x-match", headers_bad_x_match),
        ("headers unbind by arguments", headers_unbind_by_arguments),
        ("CC and BCC headers", cc_and_bcc),
        ("mandatory unroutable returned", mandatory_unroutable),
        ("exchange-to-exchange bindings", e2e_bindings),
        ("exchange-to-exchange loop", e2e_loop),
        ("alternate exchange", alternate_exchange),
        ("alternate exchange chain, missing AE", alternate_exchange_chain_and_missing),
        ("alternate exchange cycle", alternate_exchange_cycle),
        ("alternate exchange equivalence", alternate_exchange_equivalence),
        ("alternate exchange with e2e bindings", alternate_exchange_with_e2e),
        ("internal and deleted alternate exchange", alternate_exchange_special),
        ("bindings differing in arguments", bindings_with_arguments_are_distinct),
        ("topic: long keys, many #", topic_many_words),
    ]:
        R.run(name, fn)
    sys.exit(R.finish())


if __name__ == "__main__":
    main()
