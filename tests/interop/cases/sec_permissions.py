# timeout: 120
"""Permissions, with python3-pika and warrenctl: a user gets configure, write
and read expressions (warrenctl set_permissions), then every operation that
needs a permission is tried with that permission denied (403 naming the
resource, and only the channel closes) and granted (it works):

  exchange.declare / exchange.delete   configure on the exchange
  queue.declare / queue.delete         configure on the queue
  queue.bind / queue.unbind            write on the queue, read on the exchange
  exchange.bind                        write on the destination, read on the source
  basic.publish                        write on the exchange ('' is amq.default)
  basic.consume / basic.get /
  queue.purge                          read on the queue

plus how the expressions match (unanchored, "" matches nothing) and that a
user without permissions on a vhost is refused at connection.open with 530.

Every expected reply code and text was taken from RabbitMQ 3.10.8 running
the same calls: point the case at RabbitMQ with WARREN_PORT=... and
SEC_CTL="rabbitmqctl -n NODE" to re-check them."""

import os
import shlex
import subprocess
import sys
import uuid

import pika
from pika.exceptions import ChannelClosedByBroker, ProbableAccessDeniedError

from _amqpraw import Results

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
RUN = uuid.uuid4().hex[:6]
USER = "perm-" + RUN
PASS = "pw-" + RUN
R = Results()


def ctl_command():
    if os.environ.get("SEC_CTL"):
        return shlex.split(os.environ["SEC_CTL"])
    ctl = os.path.join(os.path.dirname(os.environ["WARREN_BIN"]), "warrenctl")
    return [ctl, "-d", os.environ["WARREN_DATA_DIR"]]


CTL = ctl_command()


def ctl(*args):
    p = subprocess.run(CTL + ["-q"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                                   p.stderr.strip()))
    return p.stdout


def connect(user="guest", password="guest", vhost="/"):
    return pika.BlockingConnection(pika.ConnectionParameters(
        HOST, PORT, vhost, pika.PlainCredentials(user, password)))


def n(base):
    return "%s-%s" % (base, RUN)


def grant(configure, write, read, vhost="/", user=None):
    ctl("set_permissions", "-p", vhost, user or USER, configure, write, read)


def refused_text(kind, name, user=None):
    return "ACCESS_REFUSED - access to %s '%s' in vhost '/' refused for user '%s'" % (
        kind, name, user or USER)


def as_user(fn):
    """Run fn(channel) on a fresh connection of the test user; returns the
    connection (still open) and fn's result or the ChannelClosedByBroker."""
    c = connect(USER, PASS)
    ch = c.channel()
    try:
        return c, fn(ch)
    except ChannelClosedByBroker as e:
        return c, e


def expect_refused(fn, kind, name):
    c, r = as_user(fn)
    try:
        assert isinstance(r, ChannelClosedByBroker), "not refused: %r" % (r,)
        assert (r.reply_code, r.reply_text) == (403, refused_text(kind, name)), \
            "got %d %r" % (r.reply_code, r.reply_text)
        # a channel error: the connection stays up and opens channels
        assert c.is_open, "the connection closed too"
        c.channel().close()
    finally:
        if c.is_open:
            c.close()


def expect_allowed(fn):
    c, r = as_user(fn)
    try:
        assert not isinstance(r, ChannelClosedByBroker), \
            "refused: %d %s" % (r.reply_code, r.reply_text)
        return r
    finally:
        if c.is_open:
            c.close()


def admin(fn):
    """fn(channel) as guest, who may do anything on '/'."""
    c = connect()
    try:
        return fn(c.channel())
    finally:
        c.close()


ALL = ".*"
NONE = "^$"  # matches only the empty name, which no resource here has


# ---- configure ------------------------------------------------------------

def exchange_declare():
    x = n("sec-x")
    grant(NONE, ALL, ALL)
    expect_refused(lambda ch: ch.exchange_declare(x, "direct"), "exchange", x)
    grant(ALL, NONE, NONE)
    expect_allowed(lambda ch: ch.exchange_declare(x, "direct"))
    # passive declare needs no permission (RabbitMQ)
    grant(NONE, NONE, NONE)
    expect_allowed(lambda ch: ch.exchange_declare(x, passive=True))
    admin(lambda ch: ch.exchange_delete(x))


def exchange_delete():
    x = n("sec-xd")
    admin(lambda ch: ch.exchange_declare(x, "direct"))
    grant(NONE, ALL, ALL)
    expect_refused(lambda ch: ch.exchange_delete(x), "exchange", x)
    grant(ALL, NONE, NONE)
    expect_allowed(lambda ch: ch.exchange_delete(x))
    assert admin(lambda ch: passive_exchange_missing(ch, x)), "exchange not deleted"


def passive_exchange_missing(ch, x):
    try:
        ch.exchange_declare(x, passive=True)
        return False
    except ChannelClosedByBroker as e:
        return e.reply_code == 404


def queue_declare():
    q = n("sec-q")
    grant(NONE, ALL, ALL)
    expect_refused(lambda ch: ch.queue_declare(q), "queue", q)
    grant(ALL, NONE, NONE)
    expect_allowed(lambda ch: ch.queue_declare(q))
    grant(NONE, NONE, NONE)
    # passive declare needs no permission
    expect_allowed(lambda ch: ch.queue_declare(q, passive=True))
    admin(lambda ch: ch.queue_delete(q))


def queue_delete():
    q = n("sec-qd")
    admin(lambda ch: ch.queue_declare(q))
    grant(NONE, ALL, ALL)
    expect_refused(lambda ch: ch.queue_delete(q), "queue", q)
    grant(ALL, NONE, NONE)
    expect_allowed(lambda ch: ch.queue_delete(q))


# ---- bindings ---------------------------------------------------------------

def setup_qx():
    q, x = n("sec-bq"), n("sec-bx")
    admin(lambda ch: (ch.queue_declare(q), ch.exchange_declare(x, "direct")))
    return q, x


def cleanup_qx(q, x):
    admin(lambda ch: (ch.queue_delete(q), ch.exchange_delete(x)))


def queue_bind():
    q, x = setup_qx()
    try:
        grant(NONE, NONE, ALL)
        expect_refused(lambda ch: ch.queue_bind(q, x, "k"), "queue", q)
        grant(NONE, ALL, NONE)
        expect_refused(lambda ch: ch.queue_bind(q, x, "k"), "exchange", x)
        # write on the queue and read on the exchange, nothing more
        grant(NONE, "^%s$" % q, "^%s$" % x)
        expect_allowed(lambda ch: ch.queue_bind(q, x, "k"))
        grant(NONE, NONE, ALL)
        expect_refused(lambda ch: ch.queue_unbind(q, x, "k"), "queue", q)
        grant(NONE, ALL, NONE)
        expect_refused(lambda ch: ch.queue_unbind(q, x, "k"), "exchange", x)
        grant(NONE, "^%s$" % q, "^%s$" % x)
        expect_allowed(lambda ch: ch.queue_unbind(q, x, "k"))
    finally:
        cleanup_qx(q, x)


def exchange_bind():
    src, dst = n("sec-src"), n("sec-dst")
    admin(lambda ch: (ch.exchange_declare(src, "fanout"), ch.exchange_declare(dst, "fanout")))
    try:
        grant(NONE, NONE, ALL)
        expect_refused(lambda ch: ch.exchange_bind(dst, src), "exchange", dst)
        grant(NONE, ALL, NONE)
        expect_refused(lambda ch: ch.exchange_bind(dst, src), "exchange", src)
        grant(NONE, "^%s$" % dst, "^%s$" % src)
        expect_allowed(lambda ch: ch.exchange_bind(dst, src))
        expect_allowed(lambda ch: ch.exchange_unbind(dst, src))
    finally:
        admin(lambda ch: (ch.exchange_delete(src), ch.exchange_delete(dst)))


# ---- publish ----------------------------------------------------------------

def publish_then_sync(exchange, key):
    def fn(ch):
        ch.basic_publish(exchange, key, b"m")
        # the refusal comes asynchronously: a round trip collects it
        ch.exchange_declare("amq.direct", passive=True)
    return fn


def publish():
    q, x = setup_qx()
    try:
        admin(lambda ch: ch.queue_bind(q, x, "k"))
        grant(ALL, NONE, ALL)
        expect_refused(publish_then_sync(x, "k"), "exchange", x)
        grant(NONE, "^%s$" % x, NONE)
        expect_allowed(publish_then_sync(x, "k"))
        # the default exchange is amq.default for permissions
        grant(ALL, NONE, ALL)
        expect_refused(publish_then_sync("", q), "exchange", "amq.default")
        grant(NONE, "^amq\\.default$", NONE)
        expect_allowed(publish_then_sync("", q))
        # writing to the exchange is enough: the queue needs nothing
        count = admin(lambda ch: ch.queue_declare(q, passive=True).method.message_count)
        assert count == 2, "queue holds %d messages, wanted 2" % count
    finally:
        cleanup_qx(q, x)


# ---- read -------------------------------------------------------------------

def consume_get_purge():
    q = n("sec-rq")
    admin(lambda ch: ch.queue_declare(q))
    try:
        grant(ALL, ALL, NONE)
        expect_refused(lambda ch: ch.basic_consume(q, lambda *a: None), "queue", q)
        expect_refused(lambda ch: ch.basic_get(q), "queue", q)
        expect_refused(lambda ch: ch.queue_purge(q), "queue", q)
        grant(NONE, NONE, "^%s$" % q)
        expect_allowed(lambda ch: ch.basic_consume(q, lambda *a: None))
        expect_allowed(lambda ch: ch.basic_get(q))
        expect_allowed(lambda ch: ch.queue_purge(q))
    finally:
        admin(lambda ch: ch.queue_delete(q))


# ---- the expressions --------------------------------------------------------

def regex_matching():
    a, b = n("app-q"), n("q-app")
    try:
        # anchored prefix
        grant("^app-", NONE, NONE)
        expect_allowed(lambda ch: ch.queue_declare(a))
        expect_refused(lambda ch: ch.queue_declare(b), "queue", b)
        # unanchored: matches anywhere in the name, as RabbitMQ's re:run does
        grant("app", NONE, NONE)
        expect_allowed(lambda ch: ch.queue_declare(b))
        # "" allows no (non-empty) name
        grant("", NONE, NONE)
        expect_refused(lambda ch: ch.queue_declare(a), "queue", a)
        # PCRE's \d, translated
        d = n("job-42")
        grant("^job-\\d+-", NONE, NONE)
        expect_allowed(lambda ch: ch.queue_declare(d))
        admin(lambda ch: ch.queue_delete(d))
    finally:
        admin(lambda ch: (ch.queue_delete(a), ch.queue_delete(b)))


# ---- vhost access -----------------------------------------------------------

def vhost_access():
    other = "noperm-" + RUN
    vh = "secvh-" + RUN
    ctl("add_user", other, "pw")
    ctl("add_vhost", vh)
    try:
        # no permissions anywhere: '/' is refused at connection.open
        try:
            connect(other, "pw").close()
            raise AssertionError("a user without permissions opened vhost '/'")
        except ProbableAccessDeniedError as e:
            want = ("530", "NOT_ALLOWED - access to vhost '/' refused for user '%s'" % other)
            assert all(w in str(e) for w in want), str(e)
        # permissions on another vhost do not open '/'
        grant(ALL, ALL, ALL, vhost=vh, user=other)
        connect(other, "pw", vhost=vh).close()
        try:
            connect(other, "pw").close()
            raise AssertionError("permissions on %s opened '/'" % vh)
        except ProbableAccessDeniedError as e:
            assert "access to vhost '/' refused for user '%s'" % other in str(e), str(e)
        # an empty permission set still grants access to the vhost (RabbitMQ)
        grant("", "", "", user=other)
        connect(other, "pw").close()
    finally:
        ctl("delete_user", other)
        ctl("delete_vhost", vh)


def main():
    ctl("add_user", USER, PASS)
    try:
        for name, fn in (
            ("exchange.declare needs configure", exchange_declare),
            ("exchange.delete needs configure", exchange_delete),
            ("queue.declare needs configure", queue_declare),
            ("queue.delete needs configure", queue_delete),
            ("queue.bind/unbind need write on queue, read on exchange", queue_bind),
            ("exchange.bind needs write on destination, read on source", exchange_bind),
            ("basic.publish needs write on the exchange (amq.default)", publish),
            ("consume, get and purge need read on the queue", consume_get_purge),
            ("expressions match unanchored; '' matches nothing", regex_matching),
            ("vhost access at connection.open", vhost_access),
        ):
            R.run(name, fn)
    finally:
        ctl("delete_user", USER)
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
