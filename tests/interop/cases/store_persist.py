# broker: none
# timeout: 240
"""What survives a restart, with python3-pika, after a clean stop (SIGTERM)
and after kill -9:
  - a durable queue keeps its persistent messages, in order; transient
    messages, non-durable, exclusive and auto-delete queues and non-durable
    exchanges are gone;
  - messages delivered and not acked come back with redelivered=true, acked
    ones do not come back;
  - a durable exchange-to-exchange binding and an alternate exchange still
    route;
  - users, vhosts and permissions made with warrenctl are kept, deleted
    ones stay deleted, and the user can log in with the same password;
and the data directory shrinks back to about its initial size once 200 MB
of persistent messages were published and consumed (segments deleted).
Before kill -9, a confirmed persistent publish on the channel proves the
acks and deliveries before it are on disk (the store reports durable
writes in order); RabbitMQ gives the same answers to all of this.
"""

import os
import sys
import time

import pika

sys.path.insert(0, os.path.join(os.environ["WARREN_SRCDIR"], "tests", "crash"))
from brokerproc import Broker  # noqa: E402

TMP = os.environ["WARREN_TMP"]
PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def connect(b, user="guest", password="guest", vhost="/"):
    params = pika.ConnectionParameters(
        "127.0.0.1", b.port, vhost, pika.PlainCredentials(user, password),
        heartbeat=0, blocked_connection_timeout=60)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    return conn, ch


def passive_exists(b, kind, name, vhost="/"):
    conn, ch = connect(b, vhost=vhost)
    try:
        if kind == "queue":
            ch.queue_declare(name, passive=True)
        else:
            ch.exchange_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        check(e.reply_code == 404, "passive declare of %s: %r" % (name, e))
        return False
    finally:
        if conn.is_open:
            conn.close()


def get_all(ch, queue, ack=True):
    """[(body, redelivered)] of every message, acked (or left unacked)."""
    out = []
    while True:
        m, _, body = ch.basic_get(queue, auto_ack=False)
        if m is None:
            return out
        out.append((body.decode(), m.redelivered))
        if ack:
            ch.basic_ack(m.delivery_tag)


def ctl(b, *args):
    return b.ctl_run(*args)[1]


def populate(b):
    ctl(b, "add_vhost", "v1")
    ctl(b, "add_user", "alice", "s3cret", "--tags", "monitoring")
    ctl(b, "set_permissions", "-p", "v1", "alice", "^al-", ".*", ".*")
    ctl(b, "add_user", "bob", "pw")
    ctl(b, "delete_user", "bob")
    ctl(b, "add_vhost", "gone")
    ctl(b, "delete_vhost", "gone")

    conn, ch = connect(b)
    ch.exchange_declare("p.src", "direct", durable=True)
    ch.exchange_declare("p.dst", "fanout", durable=True)
    ch.exchange_bind(destination="p.dst", source="p.src", routing_key="k")
    ch.exchange_declare("p.ae", "fanout", durable=True)
    ch.exchange_declare("p.main", "direct", durable=True,
                        arguments={"alternate-exchange": "p.ae"})
    ch.exchange_declare("p.transient-x", "fanout", durable=False)
    ch.queue_declare("p.durable", durable=True)
    ch.queue_bind("p.durable", "p.dst")
    ch.queue_declare("p.unrouted", durable=True)
    ch.queue_bind("p.unrouted", "p.ae")
    ch.queue_declare("p.transient", durable=False)
    ch.queue_bind("p.transient", "p.dst")
    ch.queue_declare("p.acked", durable=True)
    ch.confirm_delivery()
    for i in range(50):
        ch.basic_publish("p.src", "k", b"per-%d" % i, PERSISTENT)
        if i % 3 == 0:
            ch.basic_publish("p.src", "k", b"tra-%d" % i, TRANSIENT)
    for i in range(10):
        ch.basic_publish("p.main", "nowhere", b"ae-%d" % i, PERSISTENT)
    for i in range(30):
        ch.basic_publish("", "p.acked", b"ack-%d" % i, PERSISTENT)
    conn.close()

    conn, ch = connect(b, "alice", "s3cret", "v1")
    ch.queue_declare("al-q", durable=True)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("", "al-q", b"alice-%d" % i, PERSISTENT)
    conn.close()

    # held open over the restart: exclusive and auto-delete queues, and
    # deliveries not acked
    conn, ch = connect(b)
    ch.queue_declare("p.excl", durable=True, exclusive=True)
    ch.queue_declare("p.autodel", durable=False, auto_delete=True)
    ch.basic_consume("p.autodel", lambda *a: None)
    got = get_all(ch, "p.acked", ack=False)
    check([g[0] for g in got] == ["ack-%d" % i for i in range(30)], "p.acked: %r" % got)
    # per-0..4 (and the transient messages between them) delivered, not acked
    held = []
    while len(held) < 5:
        m, _, body = ch.basic_get("p.durable", auto_ack=False)
        check(m is not None, "p.durable empty")
        if body.startswith(b"per-"):
            held.append(body)
    check(held == [b"per-%d" % i for i in range(5)], "p.durable: %r" % held)
    # ack ack-0..19 one by one, leave ack-20..29 delivered-not-acked
    for tag in range(1, 21):
        ch.basic_ack(tag)
    # a confirmed persistent publish after the acks: they are durable now
    ch.confirm_delivery()
    ch.basic_publish("", "p.acked", b"marker", PERSISTENT)
    return conn


def verify(b, how):
    log = b.recovered
    check(log is not None, "no 'recovered' line in the log")
    if how == "SIGTERM":
        check(log.checkpoint, "a clean stop should recover from the checkpoint: %s" % log)
    else:
        check(not log.checkpoint, "kill -9 left a checkpoint?! %s" % log)
    # 50 per + 10 ae + 11 in p.acked + 5 alice
    check(log.messages == 76, "recovered %s, expected 76 messages" % log)

    for kind, name in (("queue", "p.transient"), ("queue", "p.excl"),
                       ("queue", "p.autodel"), ("exchange", "p.transient-x")):
        check(not passive_exists(b, kind, name), "%s %s survived the restart" % (kind, name))

    conn, ch = connect(b)
    got = get_all(ch, "p.durable")
    want = [("per-%d" % i, i < 5) for i in range(50)]
    check(got == want, "p.durable after %s: %r" % (how, got))
    got = get_all(ch, "p.acked")
    want = [("ack-%d" % i, True) for i in range(20, 30)] + [("marker", False)]
    check(got == want, "p.acked after %s: %r" % (how, got))
    got = get_all(ch, "p.unrouted")
    check(got == [("ae-%d" % i, False) for i in range(10)], "p.unrouted: %r" % got)

    # the exchange-to-exchange binding and the alternate exchange still route
    ch.confirm_delivery()
    ch.basic_publish("p.src", "k", b"after-e2e", PERSISTENT)
    ch.basic_publish("p.main", "nowhere", b"after-ae", PERSISTENT)
    check(get_all(ch, "p.durable") == [("after-e2e", False)], "e2e binding lost")
    check(get_all(ch, "p.unrouted") == [("after-ae", False)], "alternate exchange lost")
    conn.close()

    bindings = b.ctl_json("list_bindings", "source_name", "destination_name",
                          "destination_kind", "routing_key")
    check({"source_name": "p.src", "destination_name": "p.dst",
           "destination_kind": "exchange", "routing_key": "k"} in bindings,
          "list_bindings: %r" % bindings)
    xs = {x["name"]: x for x in b.ctl_json("list_exchanges", "name", "arguments")}
    check(xs.get("p.main", {}).get("arguments") == {"alternate-exchange": "p.ae"},
          "p.main: %r" % xs.get("p.main"))

    users = {u["user"]: u["tags"] for u in b.ctl_json("list_users")}
    check(users == {"guest": ["administrator"], "alice": ["monitoring"]}, "users: %r" % users)
    vhosts = sorted(v["name"] for v in b.ctl_json("list_vhosts"))
    check(vhosts == ["/", "v1"], "vhosts: %r" % vhosts)
    perms = b.ctl_json("list_permissions", "-p", "v1")
    check(perms == [{"user": "alice", "configure": "^al-", "write": ".*", "read": ".*"}],
          "permissions: %r" % perms)
    b.ctl_run("authenticate_user", "alice", "s3cret")
    conn, ch = connect(b, "alice", "s3cret", "v1")
    got = get_all(ch, "al-q")
    check(got == [("alice-%d" % i, False) for i in range(5)], "al-q: %r" % got)
    conn.close()


def restart_case(how):
    tag = how.replace(" ", "").lower()
    b = Broker(os.environ["WARREN_BIN"], os.path.join(TMP, "data-" + tag), TMP)
    try:
        b.start("persist-%s.log" % tag)
        conn = populate(b)
        if how == "SIGTERM":
            b.stop()
        else:
            b.kill9()
        try:
            conn.close()
        except pika.exceptions.AMQPError:
            pass  # the broker is gone, as intended
        b.start("persist-%s-2.log" % tag)
        verify(b, how)
        # and once more: what was consumed after the restart stays consumed
        b.stop()
        b.start("persist-%s-3.log" % tag)
        check(b.recovered.messages == 0 and b.recovered.checkpoint,
              "third start: %s (every message was consumed)" % b.recovered)
        b.stop()
        print("%s: ok" % how)
    finally:
        b.cleanup()


def du_case():
    """200 MB through a durable queue; the data directory shrinks back."""
    b = Broker(os.environ["WARREN_BIN"], os.path.join(TMP, "data-du"), TMP)
    try:
        b.start("persist-du.log")
        conn, ch = connect(b)
        ch.queue_declare("p.bulk", durable=True)
        ch.confirm_delivery()
        initial = b.du_bytes()
        body = os.urandom(64 * 1024)
        n = 200 * 1024 * 1024 // len(body)
        for i in range(n):
            ch.basic_publish("", "p.bulk", body, PERSISTENT)
        full = b.du_bytes()
        check(full >= 200e6, "data dir only %d bytes after 200 MB of persistent messages" % full)
        ch.basic_qos(prefetch_count=200)
        seen = [0]

        def on_msg(c, m, props, data):
            seen[0] += 1
            if seen[0] % 50 == 0 or seen[0] == n:
                c.basic_ack(m.delivery_tag, multiple=True)
            if seen[0] == n:
                c.stop_consuming()

        ch.basic_consume("p.bulk", on_msg)
        ch.start_consuming()
        check(ch.queue_declare("p.bulk", passive=True).method.message_count == 0,
              "p.bulk not empty")
        drained = time.monotonic()
        deadline = drained + 20
        while time.monotonic() < deadline:
            now = b.du_bytes()
            if now <= initial + 16e6:
                break
            conn.process_data_events(0.25)
        check(now <= initial + 16e6, "data dir %d bytes after draining (initially %d, %d full)"
              % (now, initial, full))
        print("du: initially %.1f MB, %.1f MB full, %.1f MB %.1f s after draining"
              % (initial / 1e6, full / 1e6, now / 1e6, time.monotonic() - drained))
        conn.close()
        b.stop()
    finally:
        b.cleanup()


restart_case("SIGTERM")
restart_case("kill -9")
du_case()
