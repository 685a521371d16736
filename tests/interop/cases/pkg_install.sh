#!/usr/bin/env bash
# broker: none
# timeout: 300
# The install flow an operator follows: `make install` into a fresh prefix,
# the installed man page renders, the installed warrend started the usual
# way (detaching: it must exit 0 once ready, leave a pid file and run on in
# its own session) with a configuration file that also enables the
# Prometheus endpoint; the installed warrenctl sets up a vhost, a user and
# permissions; pika publishes as that user; warrenctl and /metrics both see
# the messages; a second daemon on the same data directory is refused,
# naming the pid file; SIGTERM through the pid file stops the daemon and
# removes the file; --check-config prints the effective settings.
set -u

T=$WARREN_TMP
PY=/usr/bin/python3
cd "$T" || exit 1
[ -x "$PY" ] && "$PY" -c 'import pika' 2>/dev/null || { echo "python3-pika missing" >&2; exit 77; }

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" = 0 ]
	exit
}

BUILDDIR=$(dirname "$(dirname "$WARREN_BIN")")
PREFIX=$T/prefix
DATA=$T/data
PIDFILE=$DATA/warrend.pid
CONF=$T/warren.conf

# ---- install --------------------------------------------------------------

if make -C "$BUILDDIR" install prefix="$PREFIX" >"$T/install.out" 2>&1; then
	ok "make install into $PREFIX"
else
	fail "make install" "$(tail -n 20 "$T/install.out")"
	finish
fi
missing=
for f in sbin/warrend bin/warrenctl share/man/man8/warrend.8 share/man/man5/warren.conf.5 \
	share/man/man1/warrenctl.1; do
	[ -e "$PREFIX/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "installed files present" || fail "installed files present" "missing:$missing"
WARREND=$PREFIX/sbin/warrend
CTL=$PREFIX/bin/warrenctl
[ -x "$WARREND" ] && [ -x "$CTL" ] || finish

# ---- man page -------------------------------------------------------------

PAGE=$PREFIX/share/man/man8/warrend.8
if command -v man >/dev/null 2>&1; then
	render=(man -P cat -l "$PAGE")
elif command -v mandoc >/dev/null 2>&1; then
	render=(mandoc -T utf8 "$PAGE")
else
	render=()
fi
if [ ${#render[@]} = 0 ]; then
	echo "skip man page renders: neither man nor mandoc installed"
elif MANWIDTH=80 "${render[@]}" >"$T/man.out" 2>"$T/man.err" &&
	grep -q "SYNOPSIS" "$T/man.out" && grep -q "warrend" "$T/man.out" &&
	! grep -qi "warning\|error" "$T/man.err"; then
	ok "installed warrend.8 renders (${render[0]})"
else
	fail "installed warrend.8 renders" "$(head -c 400 "$T/man.err")"
fi

# ---- configuration --------------------------------------------------------

read -r PORT MPORT < <("$PY" - <<'EOF'
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
EOF
)
cat >"$CONF" <<EOF
[amqp]
listen = 127.0.0.1:$PORT

[paths]
data_dir = $DATA

[log]
level = info
file = $T/warrend.log

[metrics]
listen = 127.0.0.1:$MPORT
EOF

"$WARREND" --check-config -c "$CONF" >"$T/check.out" 2>"$T/check.err"
RC=$?
if [ "$RC" = 0 ] && grep -qx "listen = 127.0.0.1:$PORT" "$T/check.out" &&
	grep -qx "data_dir = $DATA" "$T/check.out" &&
	grep -A1 -x '\[metrics\]' "$T/check.out" | grep -qx "listen = 127.0.0.1:$MPORT" &&
	grep -qx "heartbeat = 60s" "$T/check.out"; then
	ok "--check-config prints the effective settings"
else
	fail "--check-config" "exit $RC: $(cat "$T/check.out" "$T/check.err")"
fi

# ---- start as a daemon ----------------------------------------------------

DPID=
cleanup() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID"
		for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
	fi
}
trap cleanup EXIT

start=$(date +%s)
"$WARREND" -c "$CONF" 2>"$T/daemon.log"
RC=$?
if [ "$RC" = 0 ]; then
	ok "warrend detaches and exits 0 once ready"
else
	fail "warrend starts" "exit $RC: $(cat "$T/daemon.log" "$T/warrend.log" 2>/dev/null)"
	finish
fi
DPID=$(cat "$PIDFILE" 2>/dev/null)
if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
	ok "pid file names the running daemon ($DPID)"
else
	fail "pid file" "no live pid in $PIDFILE: '$DPID'"
	finish
fi
# detached: its own session, not a child of this shell
dsid=$(ps -o sid= -p "$DPID" | tr -d ' ')
mysid=$(ps -o sid= -p $$ | tr -d ' ')
dppid=$(ps -o ppid= -p "$DPID" | tr -d ' ')
if [ -n "$dsid" ] && [ "$dsid" != "$mysid" ] && [ "$dsid" != "$DPID" ] && [ "$dppid" != $$ ]; then
	ok "daemon runs in its own session and is no session leader"
else
	fail "daemon detached" "sid $dsid (ours $mysid), ppid $dppid"
fi
# ready means listening: the AMQP port and the metrics port accept at once
if "$PY" - "$PORT" "$MPORT" <<'EOF'
import socket, sys
for p in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(p)), timeout=2).close()
EOF
then
	ok "AMQP and metrics ports accept when the start command returns"
else
	fail "ports accept" "connection refused"
fi

# ---- warrenctl sets up a vhost and a user ---------------------------------

W() { "$CTL" -q --data-dir "$DATA" "$@" >"$T/ctl.out" 2>"$T/ctl.err"; }
if W add_vhost pkg-vh && W add_user pkg-user 'pkg secret' &&
	W set_permissions -p pkg-vh pkg-user '.*' '.*' '.*'; then
	ok "installed warrenctl: add_vhost, add_user, set_permissions"
else
	fail "warrenctl setup" "$(cat "$T/ctl.err")"
fi

if timeout 60 "$PY" - "$PORT" >"$T/pika.out" 2>&1 <<'EOF'
import sys, pika
creds = pika.PlainCredentials("pkg-user", "pkg secret")
c = pika.BlockingConnection(pika.ConnectionParameters(
    "127.0.0.1", int(sys.argv[1]), "pkg-vh", creds))
ch = c.channel()
ch.queue_declare("pkg-q", durable=True)
ch.confirm_delivery()
for i in range(3):
    ch.basic_publish("", "pkg-q", b"message %d" % i,
                     pika.BasicProperties(delivery_mode=2))
c.close()
EOF
then
	ok "pika as pkg-user on pkg-vh declares pkg-q and publishes 3 (confirmed)"
else
	fail "pika publish" "$(tail -n 5 "$T/pika.out")"
fi

if W list_queues -p pkg-vh name messages &&
	grep -Eq '^pkg-q +3$' "$T/ctl.out"; then
	ok "warrenctl list_queues -p pkg-vh shows pkg-q with 3 messages"
else
	fail "list_queues" "$(cat "$T/ctl.out" "$T/ctl.err")"
fi

# ---- metrics ------------------------------------------------------------

if "$PY" - "$MPORT" >"$T/metrics.out" 2>&1 <<'EOF'
import sys, urllib.request, urllib.error
url = "http://127.0.0.1:%s/metrics" % sys.argv[1]
with urllib.request.urlopen(url, timeout=5) as r:
    assert r.status == 200, r.status
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    body = r.read().decode()
lines = body.splitlines()
want = 'warren_queue_messages_ready{vhost="pkg-vh",queue="pkg-q"} 3'
assert want in lines, body
assert "warren_messages_published_total 3" in lines, body
assert "# TYPE warren_queue_messages_ready gauge" in lines, body
assert any(l.startswith("warren_store_bytes_written_total ") for l in lines), body
try:
    urllib.request.urlopen(url.replace("/metrics", "/nothing"), timeout=5)
    raise SystemExit("no 404 for /nothing")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
print(want)
EOF
then
	ok "/metrics: $(tail -n 1 "$T/metrics.out"); other paths 404"
else
	fail "/metrics" "$(tail -n 5 "$T/metrics.out")"
fi

# ---- a second daemon on the same data directory -------------------------

"$WARREND" -c "$CONF" --foreground >"$T/second.out" 2>"$T/second.log"
RC=$?
if [ "$RC" = 1 ] && grep -qF "$PIDFILE" "$T/second.log" && kill -0 "$DPID" 2>/dev/null &&
	[ "$(cat "$PIDFILE")" = "$DPID" ]; then
	ok "second warrend refused (exit 1, names $PIDFILE)"
else
	fail "second warrend refused" "exit $RC: $(cat "$T/second.log")"
fi
"$WARREND" -c "$CONF" 2>"$T/second-daemon.log"
RC=$?
if [ "$RC" = 1 ] && grep -qF "$PIDFILE" "$T/second-daemon.log"; then
	ok "second warrend in daemon mode refused too (exit 1)"
else
	fail "second daemon refused" "exit $RC: $(cat "$T/second-daemon.log")"
fi

# ---- stop via the pid file ------------------------------------------------

kill -TERM "$(cat "$PIDFILE")"
gone=
for _ in $(seq 100); do
	if ! kill -0 "$DPID" 2>/dev/null; then gone=1; break; fi
	sleep 0.1
done
if [ -n "$gone" ] && [ ! -e "$PIDFILE" ] && grep -q "warrend stopped" "$T/warrend.log"; then
	ok "SIGTERM via the pid file stops the daemon and removes the pid file"
	DPID=
else
	fail "SIGTERM stop" "alive=${gone:-yes} pidfile=$([ -e "$PIDFILE" ] && echo present || echo gone)"
fi

# the state it left is the next start's: the queue and its 3 messages
"$WARREND" -c "$CONF" 2>>"$T/daemon.log"
RC=$?
DPID=$(cat "$PIDFILE" 2>/dev/null)
if [ "$RC" = 0 ] && W list_queues -p pkg-vh name messages && grep -Eq '^pkg-q +3$' "$T/ctl.out"; then
	ok "restarted daemon recovered pkg-q with 3 messages"
else
	fail "restart" "exit $RC: $(cat "$T/ctl.out" "$T/ctl.err" "$T/daemon.log")"
fi
cleanup
DPID=
[ ! -e "$PIDFILE" ] || fail "pid file after the second stop" "still there"

finish
