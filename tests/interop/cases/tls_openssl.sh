# broker: none
# timeout: 120
# TLS listeners seen by `openssl s_client`, against brokers this case runs
# itself (certificates from scripts/make-certs):
#  - TLS 1.2 and 1.3 handshakes verify the server certificate, and the AMQP
#    protocol header is answered with connection.start over them;
#  - TLS 1.1 (and, with min_version TLSv1.3, TLS 1.2) is refused;
#  - cipher settings are honoured;
#  - with verify_peer and fail_if_no_peer_cert a client without a
#    certificate, or with one from another CA, is refused and one with a
#    certificate from the CA is served;
#  - SIGHUP loads a renewed certificate for new connections, and a broken
#    one is logged and ignored;
#  - a missing certificate file stops warrend at start with one line naming
#    it and exit status 1.

set -u
: "${WARREN_BIN:?WARREN_BIN not set}"
T=${WARREN_TMP:-$(mktemp -d)}
SRC=${WARREN_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
cd "$T" || exit 1
command -v openssl >/dev/null || { echo "openssl not installed" >&2; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

"$SRC/scripts/make-certs" "$T/pki" >/dev/null || exit 1
"$SRC/scripts/make-certs" "$T/pki2" >/dev/null || exit 1
"$SRC/scripts/make-certs" "$T/other" >/dev/null || exit 1
cp "$T/pki/server.pem" "$T/live.pem"
cp "$T/pki/server.key" "$T/live.key"

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

BROKER=
# start NAME CONF: a broker with a plain and a TLS listener; sets PORT, TPORT
start() {
	PORT=$(free_port)
	TPORT=$(free_port)
	LOG="$T/$1.log"
	mkdir -p "$T/$1-data"
	"$WARREN_BIN" --foreground --config "$2" --listen "127.0.0.1:$PORT" \
		--tls-listen "127.0.0.1:$TPORT" --data-dir "$T/$1-data" \
		--log-level debug >"$LOG" 2>&1 </dev/null &
	BROKER=$!
	for _ in $(seq 100); do
		if ! kill -0 "$BROKER" 2>/dev/null; then
			echo "broker $1 died at start:"
			cat "$LOG"
			exit 1
		fi
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "broker $1 not listening"
	exit 1
}

stop() {
	[ -n "$BROKER" ] || return 0
	kill -TERM "$BROKER" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$BROKER" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$BROKER" 2>/dev/null; then
		kill -KILL "$BROKER"
		wait "$BROKER"
		fail "broker exits 0 on SIGTERM" "still running 10 s after SIGTERM"
	elif wait "$BROKER"; then
		ok "broker $(basename "$LOG" .log) exits 0 on SIGTERM"
	else
		fail "broker exits 0 on SIGTERM" "status $?"
	fi
	BROKER=
}
trap '[ -n "$BROKER" ] && kill -KILL "$BROKER" 2>/dev/null' EXIT

# amqp CAFILE ARGS...: send the protocol header over TLS; the broker's
# connection.start (with its mechanisms) lands in $T/out, s_client's
# messages in $T/err, its status in RC.  handshake_timeout ends the session.
amqp() {
	ca=$1
	shift
	printf 'AMQP\000\000\011\001' |
		timeout 10 openssl s_client -connect "127.0.0.1:$TPORT" -servername localhost \
			-CAfile "$ca" -verify_return_error -verify_hostname localhost -quiet "$@" \
			>"$T/out" 2>"$T/err"
	RC=$?
}
served() { grep -q -a "AMQPLAIN" "$T/out"; }

# ---- versions and ciphers ----------------------------------------------
cat >"$T/basic.conf" <<EOF
[amqp]
handshake_timeout = 1s
[tls]
cert = $T/live.pem
key = $T/live.key
EOF
start basic "$T/basic.conf"

amqp "$T/pki/ca.pem" -tls1_2
if served && grep -q "verify return:1" "$T/err"; then
	ok "TLS 1.2: verified, AMQP header answered"
else
	fail "TLS 1.2" "rc $RC: $(tail -3 "$T/err")"
fi

amqp "$T/pki/ca.pem" -tls1_3
if served; then ok "TLS 1.3: AMQP header answered"; else fail "TLS 1.3" "rc $RC: $(tail -3 "$T/err")"; fi

amqp "$T/pki/ca.pem" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
if [ "$RC" != 0 ] && ! served; then
	ok "TLS 1.1 refused"
else
	fail "TLS 1.1 refused" "rc $RC"
fi
if grep -q "TLS handshake failed: unsupported protocol" "$LOG"; then
	ok "refused handshake logged"
else
	fail "refused handshake logged" "$(grep -c handshake "$LOG") handshake lines"
fi

amqp "$T/other/ca.pem" -tls1_3
if [ "$RC" != 0 ] && grep -q "verify error" "$T/err"; then
	ok "client rejects a server certificate from an unknown CA"
else
	fail "unknown server CA" "rc $RC"
fi

# The broker's own plain listener is untouched.
if printf 'AMQP\000\000\011\001' | timeout 5 "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
sys.exit(0 if b"AMQPLAIN" in s.recv(4096) else 1)' "$PORT"; then
	ok "plain listener answers beside TLS"
else
	fail "plain listener" "no connection.start"
fi

# ---- SIGHUP reloads the certificate ------------------------------------
cp "$T/pki2/server.pem" "$T/live.pem"
cp "$T/pki2/server.key" "$T/live.key"
kill -HUP "$BROKER"
for _ in $(seq 50); do
	grep -q "SIGHUP: TLS certificate, key and CA reloaded" "$LOG" && break
	sleep 0.1
done
amqp "$T/pki2/ca.pem" -tls1_3
if served; then ok "SIGHUP: new connections get the renewed certificate"; else
	fail "SIGHUP reload" "rc $RC: $(tail -3 "$T/err")"; fi
amqp "$T/pki/ca.pem" -tls1_3
if [ "$RC" != 0 ] && ! served; then ok "SIGHUP: the old certificate is gone"; else
	fail "old certificate after SIGHUP" "rc $RC"; fi

echo "not a certificate" >"$T/live.pem"
kill -HUP "$BROKER"
for _ in $(seq 50); do
	grep -q "keeping the current TLS certificate" "$LOG" && break
	sleep 0.1
done
if grep -q "SIGHUP: tls: certificate file $T/live.pem: .*(keeping the current TLS certificate)" "$LOG"; then
	ok "SIGHUP with a broken certificate: logged"
else
	fail "broken certificate reload logged" "$(grep SIGHUP "$LOG" | tail -1)"
fi
amqp "$T/pki2/ca.pem" -tls1_3
if served; then ok "SIGHUP with a broken certificate: the current one stays"; else
	fail "current certificate kept" "rc $RC"; fi
stop

# ---- client certificates -----------------------------------------------
cat >"$T/mtls.conf" <<EOF
[amqp]
handshake_timeout = 1s
[tls]
cert = $T/pki/server.pem
key = $T/pki/server.key
ca = $T/pki/ca.pem
min_version = TLSv1.3
ciphersuites = TLS_CHACHA20_POLY1305_SHA256
verify_peer = true
fail_if_no_peer_cert = true
EOF
start mtls "$T/mtls.conf"

amqp "$T/pki/ca.pem" -tls1_3 -cert "$T/pki/guest.pem" -key "$T/pki/guest.key"
if served && grep -q "EXTERNAL" "$T/out"; then
	ok "client certificate accepted, EXTERNAL offered"
else
	fail "client certificate" "rc $RC: $(tail -3 "$T/err")"
fi
if grep -q "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256, client certificate CN=guest" "$LOG"; then
	ok "ciphersuites honoured, CN logged"
else
	fail "cipher suite and CN" "$(grep 'TLSv1' "$LOG" | tail -1)"
fi

amqp "$T/pki/ca.pem" -tls1_3
if ! served && grep -q "certificate required" "$T/err"; then
	ok "fail_if_no_peer_cert: client without a certificate refused"
else
	fail "no client certificate refused" "rc $RC: $(tail -2 "$T/err")"
fi

amqp "$T/pki/ca.pem" -tls1_3 -cert "$T/other/guest.pem" -key "$T/other/guest.key"
if ! served; then
	ok "client certificate from another CA refused"
else
	fail "foreign client certificate refused" "served"
fi

amqp "$T/pki/ca.pem" -tls1_2
if [ "$RC" != 0 ] && ! served; then ok "min_version TLSv1.3: TLS 1.2 refused"; else
	fail "min_version TLSv1.3" "rc $RC"; fi
stop

# ---- bad certificate at start ------------------------------------------
mkdir -p "$T/bad-data"
"$WARREN_BIN" --foreground --listen "127.0.0.1:$(free_port)" --tls-listen "127.0.0.1:$(free_port)" \
	--tls-cert "$T/missing.pem" --data-dir "$T/bad-data" >"$T/bad.out" 2>"$T/bad.err" </dev/null
RC=$?
errs=$(grep -c "error" "$T/bad.err")
if [ "$RC" = 1 ] && [ "$errs" = 1 ] &&
	grep -q "tls: certificate file $T/missing.pem: No such file or directory" "$T/bad.err" &&
	! grep -q "listening" "$T/bad.err"; then
	ok "missing certificate: one line naming it, exit 1, nothing bound"
else
	fail "missing certificate" "rc $RC: $(cat "$T/bad.err")"
fi

trap - EXIT
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
