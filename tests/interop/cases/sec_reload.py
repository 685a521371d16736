# broker: none
# timeout: 60
"""SIGHUP re-reads limits: a broker started without a per-vhost connection
limit gets one from an edited configuration file and a SIGHUP; connections
already open stay open, the next one over the limit is refused with 530."""

import os
import signal
import socket
import subprocess
import sys
import time

from _amqpraw import Conn, Results, parse_close

R = Results()
tmp = os.environ["WARREN_TMP"]
binary = os.environ["WARREN_BIN"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


port = free_port()
conf = os.path.join(tmp, "reload.conf")
data = os.path.join(tmp, "reload-data")


def write_conf(limit):
    with open(conf, "w") as f:
        f.write("[amqp]\nlisten = 127.0.0.1:%d\n[limits]\nmax_connections_per_vhost = %d\n"
                % (port, limit))


write_conf(0)
log = open(os.path.join(tmp, "reload-broker.log"), "w")
proc = subprocess.Popen([binary, "--foreground", "-c", conf, "-d", data], stderr=log)
deadline = time.time() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            proc.kill()
            sys.exit("broker did not start")
        time.sleep(0.05)
os.environ["WARREN_PORT"] = str(port)
import _amqpraw  # noqa: E402
_amqpraw.PORT = port

held = []


def open_ok():
    c = Conn()
    m = c.handshake()
    return c, m


def before_reload():
    for _ in range(2):
        c, m = open_ok()
        assert m[1:3] == (10, 41), "expected open-ok, got %r" % (m[:3],)
        held.append(c)


def after_reload():
    write_conf(2)
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    c, m = open_ok()
    assert m is not None and m[1:3] == (10, 50), "expected connection.close, got %r" % (m,)
    code, text, _, _ = parse_close(m[3])
    assert code == 530 and "connection limit (2) is reached" in text, (code, text)
    # the two connections opened before the reload are still served
    for c2 in held:
        c2.open_channel(1)


def bad_reload_keeps_settings():
    with open(conf, "a") as f:
        f.write("bogus_key = 1\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    c, m = open_ok()
    assert m[1:3] == (10, 50), "the old limit should still hold after a bad reload"
    with open(os.path.join(tmp, "reload-broker.log")) as f:
        assert "keeping the current settings" in f.read()


R.run("connections open before the reload", before_reload)
R.run("SIGHUP applies a new per-vhost limit", after_reload)
R.run("a bad file on SIGHUP keeps the settings", bad_reload_keeps_settings)
for c in held:
    c.close()
proc.send_signal(signal.SIGTERM)
try:
    rc = proc.wait(10)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = -1
R.run("broker exits 0 after SIGTERM", lambda: None if rc == 0 else (_ for _ in ()).throw(
    AssertionError("exit %d" % rc)))
sys.exit(R.finish())
