# timeout: 90
"""Connection and channel error paths over a raw socket: each sends bytes a
client library would not, asserts the broker's exact answer (reply code,
which side closes), and then checks a fresh client still gets served."""

import struct
import sys
import time

from _amqpraw import (HEADER, Conn, Results, frame, longstr, method, parse_close,
                      shortstr, table)

R = Results()


def fresh_client_ok():
    c = Conn()
    m = c.handshake()
    assert m[1:3] == (10, 41), "fresh client: expected open-ok, got %r" % (m[:3],)
    c.open_channel(1)
    c.send(method(1, 20, 40, struct.pack(">HHH", 200, 0, 0)[:2] + shortstr("bye") +
                  struct.pack(">HH", 0, 0)))
    c.expect(20, 41, 1)
    c.close()


def expect_conn_close(c, code, text_part=None):
    m = c.recv_method()
    assert m is not None, "socket closed without connection.close"
    assert m[1:3] == (10, 50), "expected connection.close, got %r" % (m[:3],)
    got = parse_close(m[3])
    assert got[0] == code, "expected reply code %d, got %r" % (code, got)
    if text_part:
        assert text_part in got[1], "reply text %r lacks %r" % (got[1], text_part)
    c.send(method(0, 10, 51))  # close-ok
    assert c.closed(), "socket not closed after close-ok"
    fresh_client_ok()
    return got


def expect_channel_close(c, ch, code, text_part=None):
    m = c.recv_method()
    assert m is not None, "socket closed, expected channel.close"
    assert m[1:3] == (20, 40) and m[0] == ch, "expected channel.close, got %r" % (m[:3],)
    got = parse_close(m[3])
    assert got[0] == code, "expected reply code %d, got %r" % (code, got)
    if text_part:
        assert text_part in got[1], "reply text %r lacks %r" % (got[1], text_part)
    c.send(method(ch, 20, 41))
    return got


def bad_header(hdr):
    def run():
        c = Conn()
        c.send(hdr)
        data = b""
        while True:
            d = c.s.recv(100)
            if not d:
                break
            data += d
        assert data == HEADER, "expected the 0-9-1 header back, got %r" % data
        fresh_client_ok()
    return run


def opened(**kw):
    c = Conn()
    m = c.handshake(**kw)
    assert m[1:3] == (10, 41), "expected open-ok, got %r" % (m[:3],)
    return c


def bad_frame_end():
    c = opened()
    c.send(method(0, 10, 60)[:-1] + b"\x00")  # corrupt the frame-end octet
    expect_conn_close(c, 501)


def oversized_frame():
    c = opened(frame_max=4096)
    c.open_channel(1)
    c.send(frame(3, 1, b"x" * 5000))
    expect_conn_close(c, 501, "frame_max")


def unknown_frame_type():
    c = opened()
    c.send(frame(7, 0, b"abc"))
    expect_conn_close(c, 501)


def unknown_class():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 99, 10))
    expect_conn_close(c, 540)


def unknown_method():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 50, 99))
    expect_conn_close(c, 540)


def truncated_method():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 50, 10, b"\x00"))  # queue.declare cut short
    expect_conn_close(c, 502)


def malformed_table():
    c = opened()
    c.open_channel(1)
    bad = struct.pack(">I", 5) + shortstr("k") + b"Z" + b"\x00\x00"
    c.send(method(1, 50, 10, b"\x00\x00" + shortstr("q") + b"\x00" + bad))
    expect_conn_close(c, 502)


def malformed_props():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("q") + b"\x00"))
    # property flags with the continuation bit set
    c.send(frame(2, 1, struct.pack(">HHQH", 60, 0, 1, 0x0001)))
    expect_conn_close(c, 502)


def channel_not_open():
    c = opened()
    c.send(method(3, 50, 10, b"\x00\x00" + shortstr("q") + b"\x00" + table({})))
    expect_conn_close(c, 504)


def channel_reopen():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 20, 10, shortstr("")))
    expect_conn_close(c, 504, "second 'channel.open'")


def channel_above_max():
    c = opened(channel_max=10)
    c.send(method(11, 20, 10, shortstr("")))
    expect_conn_close(c, 530)


def heartbeat_on_channel():
    c = opened()
    c.open_channel(1)
    c.send(frame(8, 1, b""))
    expect_conn_close(c, 505)


def header_without_publish():
    c = opened()
    c.open_channel(1)
    c.send(frame(2, 1, struct.pack(">HHQH", 60, 0, 0, 0)))
    expect_conn_close(c, 505)


def body_instead_of_header():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("q") + b"\x00"))
    c.send(frame(3, 1, b"body"))
    expect_conn_close(c, 505)


def method_instead_of_body():
    c = opened()
    c.open_channel(1)
    c.send(method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("q") + b"\x00"))
    c.send(frame(2, 1, struct.pack(">HHQH", 60, 0, 10, 0)))
    c.send(method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("q") + b"\x00"))
    expect_conn_close(c, 505)


def tune_frame_max_too_small():
    c = Conn()
    c.send(HEADER)
    c.expect(10, 10)
    c.send(method(0, 10, 11, table({}) + shortstr("PLAIN") + longstr(b"\0guest\0guest") +
                  shortstr("en_US")))
    c.expect(10, 30)
    c.send(method(0, 10, 31, struct.pack(">HIH", 0, 1024, 0)))
    expect_conn_close(c, 530, "frame_max")


def tune_channel_max_too_big():
    c = Conn()
    c.send(HEADER)
    c.expect(10, 10)
    c.send(method(0, 10, 11, table({}) + shortstr("PLAIN") + longstr(b"\0guest\0guest") +
                  shortstr("en_US")))
    c.expect(10, 30)
    c.send(method(0, 10, 31, struct.pack(">HIH", 4000, 131072, 0)))
    expect_conn_close(c, 530, "channel_max")


def unknown_vhost():
    c = Conn()
    m = c.handshake(vhost="nope")
    assert m[1:3] == (10, 50), "expected connection.close, got %r" % (m[:3],)
    got = parse_close(m[3])
    assert got[0] == 530, got
    c.send(method(0, 10, 51))
    assert c.closed()
    fresh_client_ok()


def bad_password_with_capability():
    c = Conn()
    m = c.handshake(password="wrong")
    # The broker answers start-ok with connection.close 403 instead of tune.
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    got = parse_close(m[3])
    assert got[0] == 403 and "ACCESS_REFUSED" in got[1], got
    fresh_client_ok()


def bad_password_without_capability():
    c = Conn()
    c.send(HEADER)
    c.expect(10, 10)
    c.send(method(0, 10, 11, table({"product": "x"}) + shortstr("PLAIN") +
                  longstr(b"\0guest\0nope") + shortstr("en_US")))
    assert c.closed(), "socket should just close"
    fresh_client_ok()


def unknown_mechanism():
    c = Conn()
    c.send(HEADER)
    c.expect(10, 10)
    c.send(method(0, 10, 11, table({}) + shortstr("CRAM-MD5") + longstr(b"x") +
                  shortstr("en_US")))
    m = c.recv_method()
    assert m is not None and m[1:3] == (10, 50), m
    assert parse_close(m[3])[0] == 403
    fresh_client_ok()


def amqplain_login():
    c = Conn()
    c.send(HEADER)
    c.expect(10, 10)
    resp = table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]
    c.send(method(0, 10, 11, table({}) + shortstr("AMQPLAIN") + longstr(resp) +
                  shortstr("en_US")))
    c.expect(10, 30)


def missed_heartbeats():
    c = opened(heartbeat=1)
    start = time.time()
    # Stay silent: the broker must give up after two missed intervals.
    assert c.closed(timeout=6), "broker kept a silent connection"
    took = time.time() - start
    assert 1.5 <= took <= 4.5, "closed after %.1fs" % took
    fresh_client_ok()


def heartbeats_sent():
    c = opened(heartbeat=1)
    got = False
    deadline = time.time() + 3
    while time.time() < deadline:
        f = c.recv_frame(timeout=3)
        assert f is not None
        if f[0] == 8:
            got = True
            break
    assert got, "no heartbeat from the broker"
    c.send(frame(8, 0, b""))
    c.close()


def handshake_timeout():
    c = Conn(timeout=15)
    c.send(HEADER)
    c.expect(10, 10)
    start = time.time()
    assert c.closed(timeout=14), "handshake never timed out"
    assert time.time() - start >= 8, "timed out too early"
    fresh_client_ok()


def client_close():
    c = opened()
    c.send(method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") +
                  struct.pack(">HH", 0, 0)))
    c.expect(10, 51)
    assert c.closed()


def channel_soft_error_keeps_connection():
    c = opened()
    c.open_channel(1)
    c.open_channel(2)
    # passive declare of a missing queue: 404 closes channel 1 only
    c.send(method(1, 50, 10, b"\x00\x00" + shortstr("missing-q") + b"\x01" + table({})))
    got = expect_channel_close(c, 1, 404, "no queue 'missing-q' in vhost '/'")
    assert got[2:] == (50, 10), got
    c.send(method(2, 50, 10, b"\x00\x00" + shortstr("") + b"\x08" + table({})))
    c.expect(50, 11, 2)
    c.close()


def frames_after_close_ignored():
    c = opened()
    c.send(frame(8, 1, b""))  # provokes connection.close 505
    c.send(method(0, 10, 60))  # ignored: only close-ok counts now
    m = c.recv_method()
    assert m[1:3] == (10, 50)
    c.send(method(0, 10, 51))
    assert c.closed()


for name, fn in [
    ("wrong header: AMQP 0-9", bad_header(b"AMQP\x00\x00\x09\x00")),
    ("wrong header: AMQP 1.0", bad_header(b"AMQP\x00\x01\x00\x00")),
    ("wrong header: HTTP", bad_header(b"GET / HTTP/1.1\r\n\r\n")),
    ("wrong header: garbage", bad_header(b"\x00\x01\x02\x03\x04\x05\x06\x07")),
    ("bad frame end", bad_frame_end),
    ("oversized frame", oversized_frame),
    ("unknown frame type", unknown_frame_type),
    ("unknown class id", unknown_class),
    ("unknown method id", unknown_method),
    ("truncated method arguments", truncated_method),
    ("malformed field table", malformed_table),
    ("malformed content properties", malformed_props),
    ("method on unopened channel", channel_not_open),
    ("channel opened twice", channel_reopen),
    ("channel above channel_max", channel_above_max),
    ("heartbeat on a channel", heartbeat_on_channel),
    ("content header without publish", header_without_publish),
    ("body frame instead of header", body_instead_of_header),
    ("method frame instead of body", method_instead_of_body),
    ("tune-ok frame_max below 4096", tune_frame_max_too_small),
    ("tune-ok channel_max above offer", tune_channel_max_too_big),
    ("unknown vhost", unknown_vhost),
    ("bad password, auth-failure-close", bad_password_with_capability),
    ("bad password, no capability", bad_password_without_capability),
    ("unknown SASL mechanism", unknown_mechanism),
    ("AMQPLAIN login", amqplain_login),
    ("missed heartbeats close", missed_heartbeats),
    ("broker sends heartbeats", heartbeats_sent),
    ("handshake timeout", handshake_timeout),
    ("client connection.close", client_close),
    ("soft error closes only the channel", channel_soft_error_keeps_connection),
    ("frames after close ignored", frames_after_close_ignored),
]:
    R.run(name, fn)
sys.exit(R.finish())
