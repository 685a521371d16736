# broker: none
# timeout: 90
# amqp-tools (librabbitmq) over TLS against a broker this case runs with
# verify_peer and fail_if_no_peer_cert: amqps:// URLs with --cacert and a
# client certificate (--cert/--key): declare, publish (single, a 300 KB
# body from stdin, line mode), get, consume with a count, delete; refusals
# for a client without a certificate and for a server certificate the
# client does not trust.  (librabbitmq's --ssl only works with an amqps://
# URL, and it checks host names, not IP addresses: the cases use
# amqps://guest:guest@localhost:PORT.)

set -u
: "${WARREN_BIN:?WARREN_BIN not set}"
T=${WARREN_TMP:-$(mktemp -d)}
SRC=${WARREN_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
cd "$T" || exit 1
command -v amqp-publish >/dev/null || { echo "amqp-tools not installed" >&2; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

"$SRC/scripts/make-certs" "$T/pki" >/dev/null || exit 1
"$SRC/scripts/make-certs" "$T/other" >/dev/null || exit 1
free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
TPORT=$(free_port)
cat >"$T/warren.conf" <<EOF
[tls]
cert = $T/pki/server.pem
key = $T/pki/server.key
ca = $T/pki/ca.pem
verify_peer = true
fail_if_no_peer_cert = true
EOF
mkdir -p "$T/data"
"$WARREN_BIN" --foreground --config "$T/warren.conf" --listen "127.0.0.1:$PORT" \
	--tls-listen "127.0.0.1:$TPORT" --data-dir "$T/data" >"$T/tls-amqptools.log" 2>&1 </dev/null &
BROKER=$!
trap 'kill -KILL $BROKER 2>/dev/null' EXIT
for _ in $(seq 100); do
	kill -0 "$BROKER" 2>/dev/null || { cat "$T/tls-amqptools.log"; exit 1; }
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done

U="amqps://guest:guest@localhost:$TPORT"
TLS=(--url "$U" --cacert "$T/pki/ca.pem" --cert "$T/pki/guest.pem" --key "$T/pki/guest.key")

# run CMD...: stdout to $OUT, stderr to $ERR, status to $RC
run() {
	"$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
# expect NAME WANT_RC WANT_OUT
expect() {
	if [ "$RC" = "$2" ] && [ "$OUT" = "$3" ]; then
		ok "$1"
	else
		fail "$1" "rc $RC (want $2), out '$OUT' (want '$3'), err '$ERR'"
	fi
}

run amqp-declare-queue "${TLS[@]}" -q tlsq
expect "declare a queue over TLS" 0 "tlsq"

run amqp-publish "${TLS[@]}" -r tlsq -b "over tls"
expect "publish over TLS" 0 ""
run amqp-get "${TLS[@]}" -q tlsq
expect "get over TLS" 0 "over tls"
run amqp-get "${TLS[@]}" -q tlsq
expect "get from the empty queue" 2 ""

head -c 300000 /dev/urandom >"$T/big"
run amqp-publish "${TLS[@]}" -r tlsq <"$T/big"
expect "publish a 300 KB body from stdin" 0 ""
if amqp-get "${TLS[@]}" -q tlsq | cmp -s - "$T/big"; then
	ok "300 KB body comes back intact"
else
	fail "300 KB body" "differs"
fi

printf 'one\ntwo\nthree\n' >"$T/lines"
run amqp-publish "${TLS[@]}" -r tlsq -l <"$T/lines"
expect "line mode publish" 0 ""
run amqp-consume "${TLS[@]}" -q tlsq -c 3 cat
expect "consume three messages" 0 "$(printf 'one\ntwo\nthree')"

# Refusals.  librabbitmq reports both as a failure to open the socket.
run amqp-get --url "$U" --cacert "$T/pki/ca.pem" -q tlsq
if [ "$RC" != 0 ] && [ -z "$OUT" ]; then ok "no client certificate: refused"; else
	fail "no client certificate" "rc $RC out '$OUT'"; fi
run amqp-get --url "$U" --cacert "$T/other/ca.pem" --cert "$T/pki/guest.pem" \
	--key "$T/pki/guest.key" -q tlsq
if [ "$RC" != 0 ] && [ -z "$OUT" ]; then ok "untrusted server certificate: client refuses"; else
	fail "untrusted server certificate" "rc $RC out '$OUT'"; fi
if grep -q "TLS handshake failed" "$T/tls-amqptools.log"; then
	ok "refused handshakes logged"
else
	fail "refused handshakes logged" "no 'TLS handshake failed' line"
fi

run amqp-delete-queue "${TLS[@]}" -q tlsq
expect "delete the queue over TLS" 0 "0"

kill -TERM "$BROKER"
for _ in $(seq 100); do
	kill -0 "$BROKER" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$BROKER" 2>/dev/null; then
	kill -KILL "$BROKER"
	wait "$BROKER"
	fail "broker exits 0 on SIGTERM" "still running"
elif wait "$BROKER"; then
	ok "broker exits 0 on SIGTERM"
else
	fail "broker exits 0 on SIGTERM" "status $?"
fi
trap - EXIT
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
