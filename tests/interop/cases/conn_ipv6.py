# broker: none
# timeout: 60
"""Listening on IPv6 and IPv4 at once: a broker started with
`--listen [::1]:P --listen 127.0.0.1:P2` serves pika over both, the two
listeners reach the same vhost (a message published over one is got over
the other), the log names both listeners and the peers' addresses in their
own notation, and an IPv4 client cannot reach the IPv6-only port.  Skipped
(77) when the machine has no IPv6 loopback."""

import os
import signal
import socket
import subprocess
import sys
import time

import pika

from _amqpraw import Results

BIN = os.environ.get("WARREN_BIN")
TMP = os.environ.get("WARREN_TMP", ".")

R = Results()


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(family, host):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def connect(host, port, name):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host, port, connection_attempts=1,
        client_properties={"connection_name": name}))


if not BIN:
    print("WARREN_BIN not set", file=sys.stderr)
    sys.exit(77)
if not have_ipv6_loopback():
    print("no IPv6 loopback on this machine", file=sys.stderr)
    sys.exit(77)

P6 = free_port(socket.AF_INET6, "::1")
P4 = free_port(socket.AF_INET, "127.0.0.1")
while P4 == P6:
    P4 = free_port(socket.AF_INET, "127.0.0.1")
LOG = os.path.join(TMP, "ipv6.log")
os.makedirs(os.path.join(TMP, "ipv6-data"), exist_ok=True)
log = open(LOG, "wb")
broker = subprocess.Popen(
    [BIN, "--foreground", "--listen", "[::1]:%d" % P6, "--listen", "127.0.0.1:%d" % P4,
     "--data-dir", os.path.join(TMP, "ipv6-data")],
    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def log_text():
    with open(LOG, encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_listening():
    deadline = time.time() + 10
    for fam, host, port in ((socket.AF_INET6, "::1", P6), (socket.AF_INET, "127.0.0.1", P4)):
        while True:
            assert broker.poll() is None, "broker exited %r at start" % broker.returncode
            try:
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.settimeout(0.5)
                s.connect((host, port))
                s.close()
                break
            except OSError:
                s.close()
                assert time.time() < deadline, "%s:%d not listening after 10 s" % (host, port)
                time.sleep(0.05)
    text = log_text()
    for spec in ("[::1]:%d" % P6, "127.0.0.1:%d" % P4):
        assert "listening on %s" % spec in text, "log lacks 'listening on %s'" % spec


def over_ipv6():
    c = connect("::1", P6, "h7-v6")
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"six")
        deadline = time.time() + 5
        while True:
            m, _p, body = ch.basic_get(q, auto_ack=True)
            if m:
                assert body == b"six"
                break
            assert time.time() < deadline, "message not back over IPv6"
            time.sleep(0.02)
        local = c._impl._transport._sock.getsockname()
        assert local[0] == "::1", "client not on IPv6: %r" % (local,)
        peer = "[::1]:%d" % local[1]
    finally:
        c.close()
    deadline = time.time() + 3
    while "connection %s h7-v6: user 'guest' opened vhost '/'" % peer not in log_text():
        assert time.time() < deadline, "log lacks the open of %s h7-v6" % peer
        time.sleep(0.05)


def over_ipv4():
    c = connect("127.0.0.1", P4, "h7-v4")
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"four")
        deadline = time.time() + 5
        while True:
            m, _p, body = ch.basic_get(q, auto_ack=True)
            if m:
                assert body == b"four"
                break
            assert time.time() < deadline, "message not back over IPv4"
            time.sleep(0.02)
        port = c._impl._transport._sock.getsockname()[1]
    finally:
        c.close()
    deadline = time.time() + 3
    while "connection 127.0.0.1:%d h7-v4: user 'guest' opened vhost '/'" % port not in log_text():
        assert time.time() < deadline, "log lacks the open of 127.0.0.1:%d h7-v4" % port
        time.sleep(0.05)


def same_vhost_across_listeners():
    c6 = connect("::1", P6, "h7-v6-pub")
    c4 = connect("127.0.0.1", P4, "h7-v4-get")
    try:
        ch6 = c6.channel()
        ch4 = c4.channel()
        ch6.queue_declare("h7-v6-shared")
        ch6.basic_publish("", "h7-v6-shared", b"crossed")
        # a consumer over IPv4 gets what was published over IPv6
        got = []
        ch4.basic_consume("h7-v6-shared", lambda c_, m, p, b: got.append(b), auto_ack=True)
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            c4.process_data_events(0.05)
        assert got == [b"crossed"], "got %r" % got
        ch6.basic_publish("", "h7-v6-shared", b"again")
        while len(got) < 2 and time.time() < deadline:
            c4.process_data_events(0.05)
        assert got == [b"crossed", b"again"], "got %r" % got
        ch6.queue_delete("h7-v6-shared")
    finally:
        c6.close()
        c4.close()


def ipv6_port_is_ipv6_only():
    # The [::1] listener must not also answer on 127.0.0.1 at that port.
    try:
        socket.create_connection(("127.0.0.1", P6), timeout=1).close()
    except ConnectionRefusedError:
        return
    raise AssertionError("127.0.0.1:%d accepted a connection" % P6)


def both_survive_a_dropped_client():
    # A client that vanishes mid-handshake on one listener does not
    # disturb the other.
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.connect(("::1", P6))
    s.sendall(b"AMQP\x00\x00\x09\x01")
    s.close()
    over_ipv4()
    over_ipv6()


try:
    R.run("both listeners up", wait_listening)
    R.run("pika over [::1]", over_ipv6)
    R.run("pika over 127.0.0.1", over_ipv4)
    R.run("one vhost across listeners", same_vhost_across_listeners)
    R.run("IPv6 listener is not on IPv4", ipv6_port_is_ipv6_only)
    R.run("dropped client on one listener", both_survive_a_dropped_client)
finally:
    if broker.poll() is None:
        broker.send_signal(signal.SIGTERM)
        try:
            rc = broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
            rc = broker.wait()
        if rc != 0:
            R.failed += 1
            print("FAIL broker exit: status %d after SIGTERM" % rc)
    else:
        R.failed += 1
        print("FAIL broker exit: died early with status %d" % broker.returncode)
    log.close()

sys.exit(R.finish())
