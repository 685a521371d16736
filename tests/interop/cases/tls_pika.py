# broker: none
# timeout: 90
# pika over TLS: the case runs its own warrend with a plain and a TLS
# listener (certificates from scripts/make-certs), verifies the server
# certificate and host name like a careful client, round-trips small and
# large messages over TLS (one of 4 MiB, and a burst of small ones that
# exercises the broker's TLS write gathering), checks the plain listener
# still works beside it, and that the broker exits 0 on SIGTERM.
import os
import socket
import ssl
import subprocess
import sys
import time

import pika

BIN = os.environ["WARREN_BIN"]
TMP = os.environ["WARREN_TMP"]
SRC = os.environ["WARREN_SRCDIR"]
CERTS = os.path.join(TMP, "certs")

passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - report and go on
        failed += 1
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
    else:
        passed += 1
        print("ok   %s" % name)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


subprocess.run([os.path.join(SRC, "scripts", "make-certs"), CERTS], check=True,
               stdout=subprocess.DEVNULL)
PORT = free_port()
TLS_PORT = free_port()
data = os.path.join(TMP, "tls-pika-data")
os.makedirs(data, exist_ok=True)
log = open(os.path.join(TMP, "tls-pika.log"), "w")
broker = subprocess.Popen(
    [BIN, "--foreground", "--listen", "127.0.0.1:%d" % PORT,
     "--tls-listen", "127.0.0.1:%d" % TLS_PORT,
     "--tls-cert", os.path.join(CERTS, "server.pem"),
     "--tls-key", os.path.join(CERTS, "server.key"),
     "--data-dir", data, "--log-level", "debug"],
    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_up():
    deadline = time.time() + 10
    while True:
        if broker.poll() is not None:
            raise SystemExit("broker exited with %d at start" % broker.returncode)
        try:
            # the plain port: a bare probe on the TLS one would be a failed handshake
            socket.create_connection(("127.0.0.1", PORT), timeout=0.5).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit("broker not listening within 10 s")
            time.sleep(0.05)


def tls_params(**kw):
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    return pika.ConnectionParameters(
        "localhost", TLS_PORT, ssl_options=pika.SSLOptions(ctx, "localhost"),
        connection_attempts=1, socket_timeout=5, **kw)


def round_trip(params, bodies):
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare("", exclusive=True).method.queue
        for b in bodies:
            ch.basic_publish("", q, b)
        got = []
        for method, _props, body in ch.consume(q, auto_ack=True, inactivity_timeout=10):
            assert method is not None, "only %d of %d messages came back" % (
                len(got), len(bodies))
            got.append(body)
            if len(got) == len(bodies):
                break
        ch.cancel()
        assert got == bodies, "messages differ"
    finally:
        conn.close()


def small_messages():
    round_trip(tls_params(client_properties={"connection_name": "tls-small"}),
               [("message %d" % i).encode() for i in range(200)])


def large_message():
    body = bytes(range(256)) * (4 * 4096)  # 4 MiB, many frames
    round_trip(tls_params(), [body, b"after", body[:100000]])


def burst():
    # many small deliveries in one flush: the TLS writer gathers them
    round_trip(tls_params(), [os.urandom(i % 700 + 1) for i in range(3000)])


def server_certificate():
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            cert = s.getpeercert()
            cn = dict(x[0] for x in cert["subject"])["commonName"]
            assert cn == "localhost", cn
            assert s.version() == "TLSv1.3", s.version()
            s.sendall(b"AMQP\x00\x00\x09\x01")
            head = s.recv(7)
            assert head[:3] == b"\x01\x00\x00", "no connection.start: %r" % head


def wrong_name_refused():
    # the certificate is for localhost/127.0.0.1/::1 only
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5) as raw:
        try:
            ctx.wrap_socket(raw, server_hostname="example.org")
        except ssl.SSLCertVerificationError:
            return
    raise AssertionError("a certificate for another name was accepted")


def plain_still_works():
    round_trip(pika.ConnectionParameters("127.0.0.1", PORT, connection_attempts=1),
               [b"plain"])


def logged():
    with open(os.path.join(TMP, "tls-pika.log")) as f:
        text = f.read()
    assert "listening on 127.0.0.1:%d (AMQP 0-9-1 over TLS)" % TLS_PORT in text
    assert "TLSv1.3 TLS_" in text, "handshake not logged at debug level"


try:
    wait_up()
    check("publish and consume 200 small messages over TLS", small_messages)
    check("4 MiB message over TLS", large_message)
    check("3000 small deliveries in bursts", burst)
    check("server certificate CN=localhost, TLSv1.3, AMQP header answered", server_certificate)
    check("host name checked by the client", wrong_name_refused)
    check("plain listener beside the TLS one", plain_still_works)
    check("listener and handshake logged", logged)
finally:
    broker.terminate()
    try:
        rc = broker.wait(10)
    except subprocess.TimeoutExpired:
        broker.kill()
        rc = broker.wait()
    log.close()
if rc == 0:
    passed += 1
    print("ok   broker exits 0 on SIGTERM")
else:
    failed += 1
    print("FAIL broker exits 0 on SIGTERM: status %d" % rc)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
