# timeout: 90
"""Connections and channels as python3-pika's BlockingConnection sees them:
server properties and capabilities, tune negotiation (channel_max, frame_max,
heartbeat), several channels at once, channel close/reopen, soft errors that
close one channel only, heartbeats flowing both ways on an idle connection,
the broker dropping a client that stops heartbeating, login and vhost
refusals, a clean connection close, and the client's connection_name in the
broker log."""

import os
import sys
import time

import pika
from pika.exceptions import (AMQPConnectionError, ChannelClosedByBroker,
                             ConnectionClosedByBroker,
                             ProbableAccessDeniedError,
                             ProbableAuthenticationError, StreamLostError)

from _amqpraw import Results

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
TMP = os.environ.get("WARREN_TMP", ".")
BROKER_LOG = os.path.join(TMP, "broker.log")

R = Results()


def params(**kw):
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("blocked_connection_timeout", None)
    return pika.ConnectionParameters(HOST, PORT, **kw)


def connect(**kw):
    return pika.BlockingConnection(params(**kw))


def round_trip(ch, body=b"ping"):
    """Publish to a fresh exclusive queue through the default exchange and
    get the message back: proves the channel is usable end to end."""
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, body)
    deadline = time.time() + 5
    while time.time() < deadline:
        m, _props, got = ch.basic_get(q, auto_ack=True)
        if m is not None:
            assert got == body, "got %r back, sent %r" % (got[:40], body[:40])
            return q
        time.sleep(0.02)
    raise AssertionError("message not back from %s within 5 s" % q)


def broker_log():
    with open(BROKER_LOG, encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_log(needle, secs=3.0):
    """The log once it contains needle; "" when there is no log to read
    (the case run by hand against some other broker)."""
    if not os.path.exists(BROKER_LOG):
        return ""
    deadline = time.time() + secs
    while True:
        text = broker_log()
        if needle in text:
            return text
        if time.time() > deadline:
            raise AssertionError("broker log lacks %r" % needle)
        time.sleep(0.05)


# ---- checks -----------------------------------------------------------

def server_properties():
    c = connect()
    try:
        sp = c._impl.server_properties
        assert sp.get("product") in ("Warren", b"Warren"), "product %r" % sp.get("product")
        for key in ("version", "platform", "copyright", "information", "cluster_name"):
            assert sp.get(key), "server property %r missing: %r" % (key, sp)
        caps = sp.get("capabilities")
        assert isinstance(caps, dict), "capabilities is not a table: %r" % caps
        for cap in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                    "consumer_cancel_notify", "connection.blocked",
                    "authentication_failure_close", "per_consumer_qos",
                    "consumer_priorities", "direct_reply_to"):
            assert caps.get(cap) is True, "capability %s is %r" % (cap, caps.get(cap))
    finally:
        c.close()


def tune_defaults():
    # A client that states no preference takes what the broker proposes;
    # RabbitMQ's defaults are channel_max 2047, frame_max 131072, 60 s.
    c = connect()
    try:
        p = c._impl.params
        assert p.channel_max == 2047, "channel_max %r" % p.channel_max
        assert p.frame_max == 131072, "frame_max %r" % p.frame_max
        assert p.heartbeat == 60, "heartbeat %r" % p.heartbeat
    finally:
        c.close()


def small_frame_max():
    # frame_max 4096: a 100 kB body must come back split into frames the
    # client accepts (pika drops the connection on an oversized frame).
    c = connect(frame_max=4096)
    try:
        assert c._impl.params.frame_max == 4096
        ch = c.channel()
        body = bytes(range(256)) * 400
        round_trip(ch, body)
        # and in a delivery (basic.deliver), not only basic.get-ok
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, body)
        got = []
        ch.basic_consume(q, lambda c_, m, p, b: got.append(b), auto_ack=True)
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            c.process_data_events(0.1)
        assert got == [body], "delivery of %d bytes: got %r" % (
            len(body), [len(b) for b in got])
    finally:
        c.close()


def several_channels():
    c = connect()
    try:
        chans = [c.channel() for _ in range(8)]
        nums = [ch.channel_number for ch in chans]
        assert len(set(nums)) == 8, "channel numbers not distinct: %r" % nums
        queues = [round_trip(ch, ("on %d" % ch.channel_number).encode()) for ch in chans]
        assert len(set(queues)) == 8, "server-named queues collide: %r" % queues
        assert all(ch.is_open for ch in chans)
        # a publish on one channel is visible to another channel's get
        chans[0].basic_publish("", queues[5], b"cross")
        deadline = time.time() + 5
        while True:
            m, _p, body = chans[5].basic_get(queues[5], auto_ack=True)
            if m is not None:
                assert body == b"cross"
                break
            assert time.time() < deadline, "cross-channel message never arrived"
            time.sleep(0.02)
        for ch in chans:
            ch.close()
        assert c.is_open
    finally:
        c.close()


def channel_close_reopen():
    c = connect()
    try:
        ch = c.channel(channel_number=7)
        q = ch.queue_declare("h7-pika-reopen", auto_delete=False).method.queue
        ch.basic_publish("", q, b"kept")
        ch.close()
        assert ch.is_closed
        # the same number again: the broker must have forgotten the old one
        ch2 = c.channel(channel_number=7)
        r = ch2.queue_declare(q, passive=True)
        assert r.method.message_count == 1, "message_count %r" % r.method.message_count
        m, _p, body = ch2.basic_get(q, auto_ack=True)
        assert body == b"kept"
        ch2.queue_delete(q)
        for _ in range(20):  # open/close churn on one number
            x = c.channel(channel_number=9)
            x.close()
        round_trip(c.channel(channel_number=9))
    finally:
        c.close()


def soft_error_closes_channel_only():
    c = connect()
    try:
        good = c.channel()
        bad = c.channel()
        try:
            bad.queue_declare("h7-no-such-queue", passive=True)
            raise AssertionError("passive declare of a missing queue succeeded")
        except ChannelClosedByBroker as e:
            assert e.reply_code == 404, "reply code %r" % e.reply_code
            assert e.reply_text == "NOT_FOUND - no queue 'h7-no-such-queue' in vhost '/'", \
                "reply text %r" % e.reply_text
        assert bad.is_closed and good.is_open and c.is_open
        round_trip(good)
        # publish to a missing exchange: the channel.close arrives async
        bad2 = c.channel()
        bad2.basic_publish("h7-no-such-exchange", "rk", b"x")
        try:
            bad2.queue_declare("", exclusive=True)  # a sync call to see the close
            raise AssertionError("channel survived publish to a missing exchange")
        except ChannelClosedByBroker as e:
            assert e.reply_code == 404, "reply code %r" % e.reply_code
            assert e.reply_text == \
                "NOT_FOUND - no exchange 'h7-no-such-exchange' in vhost '/'", \
                "reply text %r" % e.reply_text
        round_trip(good)
    finally:
        c.close()


def heartbeats_keep_idle_connection():
    # Both sides heartbeat every second; idle for 5 s the connection must
    # stay up and pika must have seen the broker's heartbeat frames.
    c = connect(heartbeat=2)
    try:
        assert c._impl.params.heartbeat == 2, "negotiated %r" % c._impl.params.heartbeat
        ch = c.channel()
        c.sleep(5)
        hb = c._impl._heartbeat_checker
        assert hb is not None, "pika runs no heartbeat checker"
        assert hb._heartbeat_frames_received >= 2, \
            "broker sent %d heartbeats in 5 s at heartbeat=2" % hb._heartbeat_frames_received
        assert hb._heartbeat_frames_sent >= 2
        assert c.is_open and ch.is_open
        round_trip(ch)
        c.sleep(3)
        round_trip(ch)
    finally:
        if c.is_open:
            c.close()


def heartbeat_timeout_drops_silent_client():
    # The client stops reading and heartbeating (plain time.sleep): after
    # two missed intervals the broker drops the socket.
    c = connect(heartbeat=2, client_properties={"connection_name": "h7-silent"})
    ch = c.channel()
    time.sleep(7)
    try:
        round_trip(ch)
        raise AssertionError("connection survived 7 s of silence at heartbeat=2")
    except (StreamLostError, AMQPConnectionError, ConnectionResetError) as e:
        del e
    wait_log("h7-silent: closed: missed heartbeats from client")


def heartbeat_disabled():
    c = connect(heartbeat=0)
    try:
        assert c._impl.params.heartbeat == 0
        assert c._impl._heartbeat_checker is None
        ch = c.channel()
        c.sleep(2)
        round_trip(ch)
    finally:
        c.close()


def connection_close():
    c = connect(client_properties={"connection_name": "h7-pika-conn"})
    ch = c.channel()
    round_trip(ch)
    c.close()
    assert c.is_closed and ch.is_closed
    text = wait_log("h7-pika-conn: user 'guest' opened vhost '/'")
    # after a clean close the broker has nothing to complain about
    assert "h7-pika-conn: closing" not in text, "broker closed h7-pika-conn itself"
    # exclusive queues of the closed connection are gone
    c2 = connect()
    try:
        ch2 = c2.channel()
        ch2.queue_declare("h7-after-close", exclusive=True)
        round_trip(ch2)
    finally:
        c2.close()


def exclusive_queue_dies_with_connection():
    c = connect()
    ch = c.channel()
    ch.queue_declare("h7-excl", exclusive=True)
    # another connection may not touch it while the owner lives
    other = connect()
    try:
        och = other.channel()
        try:
            och.queue_declare("h7-excl", passive=True)
            raise AssertionError("another connection could use an exclusive queue")
        except ChannelClosedByBroker as e:
            assert e.reply_code == 405, "reply code %r (%s)" % (e.reply_code, e.reply_text)
            assert "RESOURCE_LOCKED" in e.reply_text, e.reply_text
        c.close()
        och = other.channel()
        try:
            och.queue_declare("h7-excl", passive=True)
            raise AssertionError("exclusive queue outlived its connection")
        except ChannelClosedByBroker as e:
            assert e.reply_code == 404, "reply code %r" % e.reply_code
    finally:
        other.close()


def bad_password():
    try:
        c = connect(credentials=pika.PlainCredentials("guest", "wrong"))
        c.close()
        raise AssertionError("login with a wrong password succeeded")
    except ProbableAuthenticationError as e:
        text = str(e)
        assert "403" in text and "ACCESS_REFUSED" in text, text


def unknown_vhost():
    try:
        c = connect(virtual_host="h7-no-such-vhost")
        c.close()
        raise AssertionError("opened a vhost that does not exist")
    except (ProbableAccessDeniedError, ConnectionClosedByBroker) as e:
        text = str(e)
        assert "530" in text and "NOT_ALLOWED" in text, text


def many_connections():
    conns = [connect(client_properties={"connection_name": "h7-many-%d" % i})
             for i in range(20)]
    try:
        for c in conns:
            round_trip(c.channel())
    finally:
        for c in conns:
            c.close()
    wait_log("h7-many-19: user 'guest' opened vhost '/'")


for name, fn in [
    ("server_properties", server_properties),
    ("tune_defaults", tune_defaults),
    ("small_frame_max", small_frame_max),
    ("several_channels", several_channels),
    ("channel_close_reopen", channel_close_reopen),
    ("soft_error_closes_channel_only", soft_error_closes_channel_only),
    ("heartbeats_keep_idle_connection", heartbeats_keep_idle_connection),
    ("heartbeat_timeout_drops_silent_client", heartbeat_timeout_drops_silent_client),
    ("heartbeat_disabled", heartbeat_disabled),
    ("connection_close", connection_close),
    ("exclusive_queue_dies_with_connection", exclusive_queue_dies_with_connection),
    ("bad_password", bad_password),
    ("unknown_vhost", unknown_vhost),
    ("many_connections", many_connections),
]:
    R.run(name, fn)

if not os.path.exists(BROKER_LOG):
    print("note: no broker log at %s; log checks could not run" % BROKER_LOG)
sys.exit(R.finish())
