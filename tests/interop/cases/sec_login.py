# broker: none
# timeout: 90
"""Failed logins, with python3-pika and raw frames, against a broker of our
own (log level debug, listening on loopback and, when the host has one, on
a non-loopback IPv4 address):

  - a wrong password or an unknown user is refused with RabbitMQ's 403 text,
    but only after about a second; a client without the
    authentication_failure_close capability sees the socket close instead;
  - while refused logins wait, other clients are served at once, and many
    waiting logins are answered together, not one after another;
  - the log names the peer address and the user, and no password ever
    appears in it (PLAIN and AMQPLAIN);
  - guest may log in only from a loopback address, a new user from
    anywhere (needs a non-loopback address; the rule is also unit-tested in
    tests/unit/limits_test.c)."""

import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid

import pika
from pika.exceptions import ProbableAuthenticationError

import _amqpraw
from _amqpraw import Results, longstr, method, parse_close, shortstr, table

BIN = os.environ.get("WARREN_BIN")
TMP = os.environ.get("WARREN_TMP", ".")
CTL = os.path.join(os.path.dirname(BIN or "."), "warrenctl")
RUN = uuid.uuid4().hex[:8]
SECRET = "Pw-" + RUN  # every wrong password contains it: the log must not
R = Results()

REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism %s. "
           "For details see the broker logfile.")
DELAY = 1.0


def free_port(addr="127.0.0.1"):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def non_loopback_ipv4():
    """A local IPv4 address outside 127/8 that can be bound, or None."""
    cands = []
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True).stdout
        for line in out.splitlines():
            f = line.split()
            if "inet" in f:
                cands.append(f[f.index("inet") + 1].split("/")[0])
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            cands.append(s.getsockname()[0])
    except OSError:
        pass
    for a in cands:
        if a.startswith("127.") or a == "0.0.0.0":
            continue
        try:
            with socket.socket() as s:
                s.bind((a, 0))
            return a
        except OSError:
            continue
    return None


class Broker:
    def __init__(self, remote):
        self.port = free_port()
        self.remote = remote
        self.rport = free_port(remote) if remote else None
        self.data = os.path.join(TMP, "login-data")
        os.makedirs(self.data, exist_ok=True)
        self.log_path = os.path.join(TMP, "login-broker.log")
        self.log = open(self.log_path, "wb")
        args = [BIN, "--foreground", "--log-level", "debug", "--data-dir", self.data,
                "--listen", "127.0.0.1:%d" % self.port]
        if remote:
            args += ["--listen", "%s:%d" % (remote, self.rport)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            assert self.proc.poll() is None, "broker exited %r at start" % self.proc.returncode
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                assert time.time() < deadline, "broker not listening after 10 s"
                time.sleep(0.05)

    def ctl(self, *args):
        p = subprocess.run([CTL, "-q", "-d", self.data] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
        assert p.returncode == 0, "warrenctl %s: %s" % (" ".join(args), p.stderr)

    def connect(self, user="guest", password="guest", host="127.0.0.1", port=None):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host, port or self.port, "/", pika.PlainCredentials(user, password),
            connection_attempts=1))

    def raw(self):
        _amqpraw.PORT = self.port
        return _amqpraw.Conn()

    def log_text(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker did not stop within 15 s of SIGTERM")
            assert rc == 0, "broker exited %d" % rc
        self.log.close()


B = None


def refused_login(user, password, **kw):
    """Log in, expecting the 403; returns how long the refusal took."""
    t = time.time()
    try:
        B.connect(user, password, **kw).close()
    except ProbableAuthenticationError as e:
        took = time.time() - t
        assert "403" in str(e) and REFUSED % "PLAIN" in str(e), str(e)
        return took
    raise AssertionError("%s logged in with password %r" % (user, password))


def expect_log(fragment):
    deadline = time.time() + 3
    while fragment not in B.log_text():
        assert time.time() < deadline, "broker log lacks %r" % fragment
        time.sleep(0.05)


# ---- the delay ----------------------------------------------------------------

def bad_password():
    took = refused_login("guest", SECRET + "-a")
    assert DELAY - 0.1 <= took < DELAY + 1.5, "refused after %.2f s" % took
    expect_log("authentication failed: user 'guest': invalid credentials")


def unknown_user():
    took = refused_login("nobody-" + RUN, SECRET + "-b")
    assert DELAY - 0.1 <= took < DELAY + 1.5, "refused after %.2f s" % took
    expect_log("authentication failed: user 'nobody-%s': invalid credentials" % RUN)


def start_ok(c, mechanism, response, caps):
    props = {"product": "warren-sec", "capabilities": caps}
    c.send(method(0, 10, 11, table(props) + shortstr(mechanism) + longstr(response) +
                  shortstr("en_US")))


def raw_bad_login(mechanism="PLAIN", caps=None, password=None):
    """A raw connection that has sent a refused start-ok."""
    c = B.raw()
    c.send(_amqpraw.HEADER)
    c.expect(10, 10)
    pw = (password or SECRET + "-raw").encode()
    if mechanism == "PLAIN":
        resp = b"\0guest\0" + pw
    else:
        t = table({"LOGIN": "guest", "PASSWORD": pw.decode()})
        resp = t[4:]  # AMQPLAIN: the table without its length
    start_ok(c, mechanism, resp,
             caps if caps is not None else {"authentication_failure_close": True})
    return c


def without_capability():
    # RabbitMQ closes the socket: such clients would take a close for a
    # protocol error
    t = time.time()
    c = raw_bad_login(caps={})
    try:
        assert c.recv_method(5.0) is None, "got a method instead of the socket closing"
        took = time.time() - t
        assert DELAY - 0.1 <= took < DELAY + 1.5, "closed after %.2f s" % took
    finally:
        c.close()


def amqplain():
    t = time.time()
    c = raw_bad_login("AMQPLAIN", password=SECRET + "-amqplain")
    try:
        code, text, cid, mid = parse_close(c.expect(10, 50, 0))
        took = time.time() - t
        assert (code, text, cid, mid) == (403, REFUSED % "AMQPLAIN", 10, 11), (code, text)
        assert DELAY - 0.1 <= took < DELAY + 1.5, "refused after %.2f s" % took
    finally:
        c.close()


def others_served_meanwhile():
    t0 = time.time()
    waiting = [raw_bad_login() for _ in range(10)]
    try:
        # a whole session of someone else's while those wait
        t = time.time()
        g = B.connect()
        ch = g.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"hello")
        m = ch.basic_get(q, auto_ack=True)
        g.close()
        took = time.time() - t
        assert m[2] == b"hello", m
        assert took < 0.7, "a good client took %.2f s next to refused logins" % took
        # the refused ones are still waiting
        elapsed = time.time() - t0
        ready, _, _ = select.select([c.s for c in waiting], [], [], 0)
        if elapsed < DELAY - 0.1:
            assert not ready, "a refused login was answered after %.2f s" % elapsed
        # and are answered together, not one a second
        for c in waiting:
            code, text, _, _ = parse_close(c.expect(10, 50, 0))
            assert (code, text) == (403, REFUSED % "PLAIN"), (code, text)
        took = time.time() - t0
        assert DELAY - 0.1 <= took < DELAY + 1.5, "ten refusals took %.2f s" % took
    finally:
        for c in waiting:
            c.close()


def no_password_in_log():
    time.sleep(0.2)
    text = B.log_text()
    assert "authentication failed" in text, "no failed login was logged"
    assert SECRET not in text, "a password made it into the log: %s" % [
        line for line in text.splitlines() if SECRET in line][:3]
    # the peer address is named
    assert "connection 127.0.0.1:" in text and "authentication failed" in text


# ---- guest from afar -----------------------------------------------------------

def guest_only_from_loopback():
    if not B.remote:
        print("skip guest_only_from_loopback: no non-loopback IPv4 address (see "
              "tests/unit/limits_test.c)")
        return
    B.connect().close()  # from 127.0.0.1
    took = refused_login("guest", "guest", host=B.remote, port=B.rport)
    assert took >= DELAY - 0.1, "refused after %.2f s" % took
    expect_log("connection %s:" % B.remote)
    expect_log("user 'guest' can only connect via localhost")
    # any other user may come from anywhere
    user = "remote-" + RUN
    B.ctl("add_user", user, "pw-remote")
    B.ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
    c = B.connect(user, "pw-remote", host=B.remote, port=B.rport)
    c.channel().queue_declare("", exclusive=True)
    c.close()
    expect_log("user '%s' opened vhost '/'" % user)


def main():
    global B
    if not BIN:
        print("WARREN_BIN is not set", file=sys.stderr)
        return 1
    B = Broker(non_loopback_ipv4())
    try:
        for name, fn in (
            ("wrong password: 403 after the delay", bad_password),
            ("unknown user: 403 after the delay", unknown_user),
            ("no authentication_failure_close: socket closes after the delay",
             without_capability),
            ("AMQPLAIN: 403 after the delay", amqplain),
            ("others served while refused logins wait", others_served_meanwhile),
            ("guest from loopback only, other users from anywhere", guest_only_from_loopback),
            ("no password in the log", no_password_in_log),
        ):
            R.run(name, fn)
    finally:
        B.stop()
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
