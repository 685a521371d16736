# broker: none
# timeout: 90
# SASL EXTERNAL with TLS client certificates, against a broker this case
# runs with verify_peer (client certificates optional):
#  - pika (ExternalCredentials) and py-amqp (login_method EXTERNAL) with the
#    CN=guest certificate log in as guest and round-trip a message;
#  - a verified certificate whose CN names no user is refused with
#    ACCESS_REFUSED (clients with authentication_failure_close);
#  - EXTERNAL is offered only to TLS clients with a verified certificate:
#    not to TLS clients without one (they may still use PLAIN), and not
#    on the plain listener;
#  - the broker logs why a login was refused and exits 0 on SIGTERM.
import os
import socket
import ssl
import subprocess
import sys
import time

import amqp
import pika
from pika.credentials import ExternalCredentials

BIN = os.environ["WARREN_BIN"]
TMP = os.environ["WARREN_TMP"]
SRC = os.environ["WARREN_SRCDIR"]
CERTS = os.path.join(TMP, "certs")
LOG = os.path.join(TMP, "tls-external.log")

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


def cert(name):
    return os.path.join(CERTS, name)


subprocess.run([os.path.join(SRC, "scripts", "make-certs"), CERTS], check=True,
               stdout=subprocess.DEVNULL)
PORT = free_port()
TLS_PORT = free_port()
conf = os.path.join(TMP, "warren.conf")
with open(conf, "w") as f:
    f.write("[tls]\ncert = %s\nkey = %s\nca = %s\nverify_peer = true\n"
            % (cert("server.pem"), cert("server.key"), cert("ca.pem")))
data = os.path.join(TMP, "tls-external-data")
os.makedirs(data, exist_ok=True)
logf = open(LOG, "w")
broker = subprocess.Popen(
    [BIN, "--foreground", "--config", conf, "--listen", "127.0.0.1:%d" % PORT,
     "--tls-listen", "127.0.0.1:%d" % TLS_PORT, "--data-dir", data],
    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_up():
    deadline = time.time() + 10
    while True:
        if broker.poll() is not None:
            raise SystemExit("broker exited with %d at start" % broker.returncode)
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.5).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit("broker not listening within 10 s")
            time.sleep(0.05)


def context(client):
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    if client:
        ctx.load_cert_chain(cert(client + ".pem"), cert(client + ".key"))
    return ctx


def pika_params(client, credentials=None, tls=True):
    kw = {"connection_attempts": 1, "socket_timeout": 5}
    if credentials is not None:
        kw["credentials"] = credentials
    if not tls:
        return pika.ConnectionParameters("127.0.0.1", PORT, **kw)
    return pika.ConnectionParameters(
        "localhost", TLS_PORT, ssl_options=pika.SSLOptions(context(client), "localhost"), **kw)


def offered(client):
    """The mechanisms connection.start offers to a TLS client."""
    with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5) as raw:
        with context(client).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            buf = b""
            while b"en_US" not in buf:
                chunk = s.recv(4096)
                assert chunk, "connection closed before connection.start"
                buf += chunk
    for m in (b"PLAIN AMQPLAIN EXTERNAL", b"PLAIN AMQPLAIN"):
        if m in buf:
            return m.decode()
    raise AssertionError("no mechanisms in %r" % buf)


def pika_external_guest():
    conn = pika.BlockingConnection(pika_params("guest", ExternalCredentials()))
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"by certificate")
        for _ in range(50):
            m, _p, body = ch.basic_get(q, auto_ack=True)
            if m:
                assert body == b"by certificate", body
                return
            time.sleep(0.05)
        raise AssertionError("message not back")
    finally:
        conn.close()


def pyamqp_external_guest():
    # py-amqp takes its TLS options as a dict (an SSLContext is ignored)
    sslopts = {"ca_certs": cert("ca.pem"), "certfile": cert("guest.pem"),
               "keyfile": cert("guest.key"), "cert_reqs": ssl.CERT_REQUIRED,
               "server_hostname": "localhost"}
    c = amqp.Connection("localhost:%d" % TLS_PORT, ssl=sslopts,
                        login_method="EXTERNAL", connect_timeout=5)
    c.connect()
    try:
        assert c.server_capabilities.get("authentication_failure_close")
        ch = c.channel()
        q, _, _ = ch.queue_declare("", exclusive=True)
        ch.basic_publish(amqp.Message("py-amqp external"), routing_key=q)
        for _ in range(50):
            m = ch.basic_get(q, no_ack=True)
            if m:
                body = m.body.encode() if isinstance(m.body, str) else m.body
                assert body == b"py-amqp external", m.body
                return
            time.sleep(0.05)
        raise AssertionError("message not back")
    finally:
        c.close()


def unknown_user_refused():
    try:
        pika.BlockingConnection(pika_params("someone", ExternalCredentials()))
    except pika.exceptions.ProbableAccessDeniedError as e:
        assert "ACCESS_REFUSED" in str(e) and "EXTERNAL" in str(e), str(e)
        return
    except pika.exceptions.AMQPConnectionError as e:
        assert "ACCESS_REFUSED" in repr(e), repr(e)
        return
    raise AssertionError("CN=someone logged in")


def offered_with_certificate():
    assert offered("guest") == "PLAIN AMQPLAIN EXTERNAL"
    assert offered("someone") == "PLAIN AMQPLAIN EXTERNAL"


def not_offered_without_certificate():
    assert offered(None) == "PLAIN AMQPLAIN"
    try:
        pika.BlockingConnection(pika_params(None, ExternalCredentials()))
    except pika.exceptions.AMQPConnectionError as e:
        assert "EXTERNAL" in repr(e) or "mechanism" in repr(e).lower(), repr(e)
    else:
        raise AssertionError("EXTERNAL login without a certificate")


def plain_without_certificate():
    pika.BlockingConnection(pika_params(None)).close()


def not_offered_on_plain_listener():
    try:
        pika.BlockingConnection(pika_params(None, ExternalCredentials(), tls=False))
    except pika.exceptions.AMQPConnectionError:
        return
    raise AssertionError("EXTERNAL login over plain TCP")


def refusal_logged():
    with open(LOG) as f:
        text = f.read()
    assert "EXTERNAL: user 'someone' (from the certificate CN): no such user" in text, \
        "refusal reason not logged"


try:
    wait_up()
    check("pika EXTERNAL with CN=guest logs in and round-trips", pika_external_guest)
    check("py-amqp EXTERNAL with CN=guest logs in and round-trips", pyamqp_external_guest)
    check("EXTERNAL offered to clients with a verified certificate", offered_with_certificate)
    check("CN=someone (no such user) refused with ACCESS_REFUSED", unknown_user_refused)
    check("no certificate: EXTERNAL not offered, not accepted", not_offered_without_certificate)
    check("no certificate: PLAIN still works over TLS", plain_without_certificate)
    check("plain listener: EXTERNAL not offered", not_offered_on_plain_listener)
    check("refusal reason logged", refusal_logged)
finally:
    broker.terminate()
    try:
        rc = broker.wait(10)
    except subprocess.TimeoutExpired:
        broker.kill()
        rc = broker.wait()
    logf.close()
if rc == 0:
    passed += 1
    print("ok   broker exits 0 on SIGTERM")
else:
    failed += 1
    print("FAIL broker exits 0 on SIGTERM: status %d" % rc)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
