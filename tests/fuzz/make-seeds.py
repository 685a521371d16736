#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets.

The seeds are committed; this script documents how each was made and
rewrites them (deterministically) when run from the source tree:

    python3 tests/fuzz/make-seeds.py [tests/fuzz/corpus]

Only the seeds it knows are written: crash reproducers added by hand (named
crash-*) are left alone.  The encodings are written out here by hand, not
taken from the codec under test, so a codec bug cannot bless its own seeds.
"""

import os
import struct
import sys

# ---- AMQP primitives ------------------------------------------------------


def u8(v):
    return struct.pack(">B", v)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def sstr(s):
    b = s.encode() if isinstance(s, str) else s
    assert len(b) <= 255
    return u8(len(b)) + b


def lstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b)) + b


def value(t, v):
    """One field value: type letter and payload."""
    if t == "t":
        p = u8(1 if v else 0)
    elif t == "b":
        p = struct.pack(">b", v)
    elif t == "B":
        p = u8(v)
    elif t == "s":
        p = struct.pack(">h", v)
    elif t == "u":
        p = u16(v)
    elif t == "I":
        p = struct.pack(">i", v)
    elif t == "i":
        p = u32(v)
    elif t == "l":
        p = struct.pack(">q", v)
    elif t == "f":
        p = struct.pack(">f", v)
    elif t == "d":
        p = struct.pack(">d", v)
    elif t == "D":
        p = u8(v[0]) + u32(v[1])
    elif t in "Sx":
        p = lstr(v)
    elif t == "T":
        p = u64(v)
    elif t == "F":
        p = lstr(table(v))
    elif t == "A":
        p = lstr(array(v))
    elif t == "V":
        p = b""
    else:
        raise ValueError(t)
    return t.encode() + p


def table(entries):
    """Table contents (no length prefix) from [(key, type, value)]."""
    return b"".join(sstr(k) + value(t, v) for k, t, v in entries)


def array(elems):
    return b"".join(value(t, v) for t, v in elems)


def ftable(entries):
    return lstr(table(entries))


def bits(*flags):
    n = 0
    for i, f in enumerate(flags):
        if f:
            n |= 1 << i
    return u8(n)


# ---- frames ---------------------------------------------------------------

FRAME_END = b"\xce"


def frame(ftype, channel, payload):
    return u8(ftype) + u16(channel) + u32(len(payload)) + payload + FRAME_END


def method(channel, class_id, method_id, args=b""):
    return frame(1, channel, u16(class_id) + u16(method_id) + args)


def header(channel, body_size, props=b"\x00\x00", class_id=60, weight=0):
    return frame(2, channel, u16(class_id) + u16(weight) + u64(body_size) + props)


def body(channel, data):
    return frame(3, channel, data)


HEARTBEAT = frame(8, 0, b"")

# ---- realistic tables -----------------------------------------------------

EVERY_TYPE = [
    ("bool", "t", True),
    ("i8", "b", -5),
    ("u8", "B", 250),
    ("i16", "s", -30000),
    ("u16", "u", 65000),
    ("i32", "I", -2000000000),
    ("u32", "i", 4000000000),
    ("i64", "l", -(2 ** 63)),
    ("float", "f", 1.5),
    ("double", "d", -2.25),
    ("dec", "D", (2, 12345)),
    ("str", "S", "hello"),
    ("bin", "x", b"\x00\xff\x10"),
    ("arr", "A", [("I", 42), ("S", "elem"), ("F", [("k", "V", None)]), ("V", None)]),
    ("ts", "T", 1700000000),
    ("tbl", "F", [("deep", "S", "value"), ("n", "l", -7)]),
    ("void", "V", None),
]

CLIENT_CAPS = [
    ("authentication_failure_close", "t", True),
    ("basic.nack", "t", True),
    ("connection.blocked", "t", True),
    ("consumer_cancel_notify", "t", True),
    ("publisher_confirms", "t", True),
]

CLIENT_PROPS = [
    ("product", "S", "Pika Python Client Library"),
    ("platform", "S", "Python 3.11.2"),
    ("capabilities", "F", CLIENT_CAPS),
    ("information", "S", "See http://pika.rtfd.org"),
    ("version", "S", "1.2.0"),
    ("connection_name", "S", "fuzz-seed"),
]

SERVER_PROPS = [
    ("capabilities", "F", [
        ("publisher_confirms", "t", True),
        ("exchange_exchange_bindings", "t", True),
        ("basic.nack", "t", True),
        ("consumer_cancel_notify", "t", True),
        ("connection.blocked", "t", True),
        ("consumer_priorities", "t", True),
        ("authentication_failure_close", "t", True),
        ("per_consumer_qos", "t", True),
        ("direct_reply_to", "t", True),
    ]),
    ("cluster_name", "S", "warren@localhost"),
    ("copyright", "S", "Copyright (c) Warren authors"),
    ("information", "S", "Licensed under the MPL 2.0"),
    ("platform", "S", "C11 / libev"),
    ("product", "S", "Warren"),
    ("version", "S", "0.1.0"),
]

AMQPLAIN = table([("LOGIN", "S", "guest"), ("PASSWORD", "S", "guest")])

QUEUE_ARGS = [
    ("x-message-ttl", "I", 60000),
    ("x-max-length", "l", 1000),
    ("x-dead-letter-exchange", "S", "dlx"),
    ("x-dead-letter-routing-key", "S", "dead"),
    ("x-queue-type", "S", "classic"),
    ("x-max-priority", "B", 10),
]

HEADERS_BIND_ARGS = [
    ("x-match", "S", "all"),
    ("format", "S", "pdf"),
    ("type", "S", "report"),
]

MSG_HEADERS = [
    ("x-retry", "i", 3),
    ("trace", "A", [("S", "a"), ("S", "b"), ("l", 7)]),
    ("ok", "t", False),
    ("when", "T", 1700000000),
    ("nested", "F", [("x", "d", 0.5)]),
]


def nested_tables(levels):
    """{"n": {"n": ... {"leaf": true}}} with `levels` levels below the top."""
    inner = table([("leaf", "t", True)])
    for _ in range(levels):
        inner = sstr("n") + b"F" + lstr(inner)
    return inner


def all_props():
    flags = 0xFFFC
    p = u16(flags)
    p += sstr("application/json")      # content-type
    p += sstr("gzip")                  # content-encoding
    p += ftable(MSG_HEADERS)           # headers
    p += u8(2)                         # delivery-mode
    p += u8(5)                         # priority
    p += sstr("corr-1")                # correlation-id
    p += sstr("amq.rabbitmq.reply-to") # reply-to
    p += sstr("60000")                 # expiration
    p += sstr("msg-1")                 # message-id
    p += u64(1700000000)               # timestamp
    p += sstr("order.created")         # type
    p += sstr("guest")                 # user-id
    p += sstr("seed-app")              # app-id
    p += sstr("")                      # cluster-id (deprecated)
    return p


PERSISTENT_TEXT = u16(0x8000 | 0x1000) + sstr("text/plain") + u8(2)

# ---- methods (class, method, args) -----------------------------------------


def m(ch, c, mi, args=b""):
    return method(ch, c, mi, args)


START = m(0, 10, 10, u8(0) + u8(9) + ftable(SERVER_PROPS) +
          lstr("AMQPLAIN PLAIN") + lstr("en_US"))
START_OK = m(0, 10, 11, ftable(CLIENT_PROPS) + sstr("PLAIN") +
             lstr(b"\x00guest\x00guest") + sstr("en_US"))
START_OK_AMQPLAIN = m(0, 10, 11, ftable(CLIENT_PROPS) + sstr("AMQPLAIN") +
                      lstr(AMQPLAIN) + sstr("en_US"))
SECURE = m(0, 10, 20, lstr("challenge"))
SECURE_OK = m(0, 10, 21, lstr("response"))
TUNE = m(0, 10, 30, u16(2047) + u32(131072) + u16(60))
TUNE_OK = m(0, 10, 31, u16(2047) + u32(131072) + u16(60))
OPEN = m(0, 10, 40, sstr("/") + sstr("") + bits(False))
OPEN_OK = m(0, 10, 41, sstr(""))
CLOSE = m(0, 10, 50, u16(320) + sstr("CONNECTION_FORCED - shutdown") + u16(0) + u16(0))
CLOSE_OK = m(0, 10, 51)
BLOCKED = m(0, 10, 60, sstr("low on memory"))
UNBLOCKED = m(0, 10, 61)
UPDATE_SECRET = m(0, 10, 70, lstr("new-token") + sstr("refresh"))
UPDATE_SECRET_OK = m(0, 10, 71)

CH_OPEN = m(1, 20, 10, sstr(""))
CH_OPEN_OK = m(1, 20, 11, lstr(""))
CH_FLOW = m(1, 20, 20, bits(True))
CH_FLOW_OK = m(1, 20, 21, bits(True))
CH_CLOSE = m(1, 20, 40, u16(404) + sstr("NOT_FOUND - no queue 'q' in vhost '/'") +
             u16(50) + u16(10))
CH_CLOSE_OK = m(1, 20, 41)

EX_DECLARE = m(1, 40, 10, u16(0) + sstr("logs") + sstr("topic") +
               bits(False, True, False, False, False) +
               ftable([("alternate-exchange", "S", "ae")]))
EX_DECLARE_OK = m(1, 40, 11)
EX_DELETE = m(1, 40, 20, u16(0) + sstr("logs") + bits(True, False))
EX_DELETE_OK = m(1, 40, 21)
EX_BIND = m(1, 40, 30, u16(0) + sstr("dst") + sstr("src") + sstr("a.*") +
            bits(False) + ftable([]))
EX_BIND_OK = m(1, 40, 31)
EX_UNBIND = m(1, 40, 40, u16(0) + sstr("dst") + sstr("src") + sstr("a.*") +
              bits(False) + ftable([]))
EX_UNBIND_OK = m(1, 40, 51)

Q_DECLARE = m(1, 50, 10, u16(0) + sstr("orders") +
              bits(False, True, False, False, False) + ftable(QUEUE_ARGS))
Q_DECLARE_OK = m(1, 50, 11, sstr("orders") + u32(12) + u32(1))
Q_BIND = m(1, 50, 20, u16(0) + sstr("orders") + sstr("amq.headers") + sstr("") +
           bits(False) + ftable(HEADERS_BIND_ARGS))
Q_BIND_OK = m(1, 50, 21)
Q_PURGE = m(1, 50, 30, u16(0) + sstr("orders") + bits(False))
Q_PURGE_OK = m(1, 50, 31, u32(12))
Q_DELETE = m(1, 50, 40, u16(0) + sstr("orders") + bits(True, True, False))
Q_DELETE_OK = m(1, 50, 41, u32(0))
Q_UNBIND = m(1, 50, 50, u16(0) + sstr("orders") + sstr("amq.headers") + sstr("") +
             ftable(HEADERS_BIND_ARGS))
Q_UNBIND_OK = m(1, 50, 51)

QOS = m(1, 60, 10, u32(0) + u16(10) + bits(False))
QOS_OK = m(1, 60, 11)
CONSUME = m(1, 60, 20, u16(0) + sstr("orders") + sstr("ctag-1") +
            bits(False, False, False, False) + ftable([("x-priority", "I", 5)]))
CONSUME_OK = m(1, 60, 21, sstr("ctag-1"))
CANCEL = m(1, 60, 30, sstr("ctag-1") + bits(False))
CANCEL_OK = m(1, 60, 31, sstr("ctag-1"))
PUBLISH = m(1, 60, 40, u16(0) + sstr("amq.direct") + sstr("orders") +
            bits(True, False))
RETURN = m(1, 60, 50, u16(312) + sstr("NO_ROUTE") + sstr("amq.direct") + sstr("nowhere"))
DELIVER = m(1, 60, 60, sstr("ctag-1") + u64(1) + bits(False) + sstr("amq.direct") +
            sstr("orders"))
GET = m(1, 60, 70, u16(0) + sstr("orders") + bits(True))
GET_OK = m(1, 60, 71, u64(2) + bits(True) + sstr("") + sstr("orders") + u32(11))
GET_EMPTY = m(1, 60, 72, sstr(""))
ACK = m(1, 60, 80, u64(1) + bits(True))
REJECT = m(1, 60, 90, u64(2) + bits(True))
RECOVER_ASYNC = m(1, 60, 100, bits(True))
RECOVER = m(1, 60, 110, bits(True))
RECOVER_OK = m(1, 60, 111)
NACK = m(1, 60, 120, u64(3) + bits(False, True))
CONFIRM_SELECT = m(1, 85, 10, bits(False))
CONFIRM_SELECT_OK = m(1, 85, 11)
TX = [m(1, 90, i) for i in (10, 11, 20, 21, 30, 31)]


def frame_seeds():
    s = {}
    # whole conversations, as each side sends them
    s["client-handshake"] = START_OK + TUNE_OK + OPEN
    s["client-handshake-amqplain"] = START_OK_AMQPLAIN + TUNE_OK + OPEN
    s["server-handshake"] = START + TUNE + OPEN_OK
    s["client-setup"] = CH_OPEN + EX_DECLARE + Q_DECLARE + Q_BIND + QOS + CONSUME
    s["server-setup"] = CH_OPEN_OK + EX_DECLARE_OK + Q_DECLARE_OK + Q_BIND_OK + QOS_OK + CONSUME_OK
    s["publish-all-props"] = (PUBLISH + header(1, 10, all_props()) +
                              body(1, b"0123") + body(1, b"456789"))
    s["publish-persistent"] = PUBLISH + header(1, 5, PERSISTENT_TEXT) + body(1, b"hello")
    s["publish-empty-body"] = PUBLISH + header(1, 0)
    s["deliver"] = DELIVER + header(1, 3, PERSISTENT_TEXT) + body(1, b"abc") + HEARTBEAT
    s["get-ok"] = GET + GET_OK + header(1, 2) + body(1, b"hi") + GET + GET_EMPTY
    s["acks"] = ACK + NACK + REJECT + RECOVER_ASYNC + RECOVER + RECOVER_OK
    s["confirm-publish"] = CONFIRM_SELECT + CONFIRM_SELECT_OK + PUBLISH + header(1, 1) + body(1, b"x") + ACK
    s["tx"] = b"".join(TX)
    s["close-connection"] = CLOSE + CLOSE_OK
    s["close-channel"] = CH_CLOSE + CH_CLOSE_OK
    s["flow-and-blocked"] = CH_FLOW + CH_FLOW_OK + BLOCKED + UNBLOCKED
    s["secure-and-update-secret"] = SECURE + SECURE_OK + UPDATE_SECRET + UPDATE_SECRET_OK
    s["exchange-ops"] = EX_BIND + EX_BIND_OK + EX_UNBIND + EX_UNBIND_OK + EX_DELETE + EX_DELETE_OK
    s["queue-ops"] = Q_PURGE + Q_PURGE_OK + Q_UNBIND + Q_UNBIND_OK + Q_DELETE + Q_DELETE_OK
    s["consumer-ops"] = CANCEL + CANCEL_OK + RETURN + header(1, 0)
    s["heartbeats"] = HEARTBEAT * 3
    s["single-start-ok"] = START_OK
    s["single-queue-declare"] = Q_DECLARE
    s["single-content-header"] = header(1, 10, all_props())

    # malformed, one problem each
    s["bad-frame-end"] = TUNE_OK[:-1] + b"\x00"
    s["bad-frame-type"] = frame(4, 0, b"\x00\x0a\x00\x1f")
    s["protocol-header-again"] = b"AMQP\x00\x00\x09\x01"
    s["oversize-frame"] = u8(3) + u16(1) + u32(131073) + b"body"
    s["partial-frame"] = Q_DECLARE[: len(Q_DECLARE) // 2]
    s["short-method-frame"] = frame(1, 0, b"\x00\x0a\x00")
    s["unknown-class"] = m(0, 99, 10)
    s["unknown-method"] = m(0, 10, 99)
    s["trailing-bytes"] = m(0, 10, 31, u16(0) + u32(0) + u16(0) + b"\x00")
    s["truncated-args"] = frame(1, 1, Q_DECLARE[7:-1][:-5])
    s["bad-table-type"] = m(1, 50, 10, u16(0) + sstr("q") + bits() +
                            lstr(sstr("k") + b"Z" + b"\x00"))
    s["deep-args"] = m(1, 50, 10, u16(0) + sstr("q") + bits() + lstr(nested_tables(33)))
    s["props-continuation-bit"] = header(1, 1, u16(0x0001) + u16(0))
    s["props-unknown-bit"] = header(1, 1, u16(0x0002))
    s["props-truncated-headers"] = header(1, 1, u16(0x2000) + u32(100) + b"\x01k")
    s["short-content-header"] = frame(2, 1, u16(60) + u16(0) + u64(1))
    s["huge-longstr"] = m(0, 10, 21, u32(0xFFFFFFFF) + b"abc")
    return s


def table_seeds():
    s = {}
    s["every-type"] = table(EVERY_TYPE)
    s["client-properties"] = table(CLIENT_PROPS)
    s["server-properties"] = table(SERVER_PROPS)
    s["amqplain-response"] = AMQPLAIN
    s["queue-arguments"] = table(QUEUE_ARGS)
    s["headers-binding"] = table(HEADERS_BIND_ARGS)
    s["message-headers"] = table(MSG_HEADERS)
    s["nested-32"] = nested_tables(32)
    s["nested-33"] = nested_tables(33)
    s["array-of-arrays"] = table([("a", "A", [("A", [("A", [("B", 1)])]), ("F", [])])])
    s["array-contents"] = array([("I", 1), ("S", "two"), ("t", True), ("V", None)])
    s["length-prefixed"] = ftable(QUEUE_ARGS)
    s["duplicate-keys"] = table([("k", "I", 1), ("k", "l", 2), ("", "V", None)])
    s["nan-and-zero"] = table([("nan", "d", float("nan")), ("negzero", "f", -0.0)])
    s["long-key"] = table([("k" * 255, "S", "v")])
    s["empty"] = b""
    # named by type, not letter: seed names must differ without case
    for name, t, v in [("bool", "t", True), ("int8", "b", -1),
                       ("uint8", "B", 255), ("int16", "s", -1),
                       ("uint16", "u", 65535), ("int32", "I", -1),
                       ("uint32", "i", 2 ** 32 - 1), ("int64", "l", 2 ** 63 - 1),
                       ("float", "f", 3.25), ("double", "d", 1e300),
                       ("decimal", "D", (255, 2 ** 32 - 1)), ("longstr", "S", ""),
                       ("bytes", "x", b"\x00"), ("timestamp", "T", 0),
                       ("void", "V", None)]:
        s["single-" + name] = table([("k", t, v)])
    # malformed
    s["unknown-type"] = table([("ok", "t", True)]) + sstr("bad") + b"U\x00\x00"
    s["truncated-longstr"] = sstr("k") + b"S" + u32(10) + b"abc"
    s["huge-length"] = sstr("k") + b"F" + u32(0xFFFFFFFF)
    s["key-past-end"] = b"\x20short"
    s["missing-type"] = sstr("k")
    return s


def write(dirpath, seeds):
    os.makedirs(dirpath, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(dirpath, name), "wb") as f:
            f.write(data)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    write(os.path.join(root, "fuzz_frame"), frame_seeds())
    write(os.path.join(root, "fuzz_table"), table_seeds())


if __name__ == "__main__":
    main()
