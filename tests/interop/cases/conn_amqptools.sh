# timeout: 60
# amqp-tools (librabbitmq) against the broker: URL forms and vhosts, queue
# declare/delete with their printed results, publish (single, line mode,
# large body from stdin), get, consume with a count, no-ack and prefetch, an
# exchange binding made by amqp-consume, heartbeats on an idle consumer, and
# the exact error texts the tools print for broker refusals.
#
# Note: the harness's WARREN_URL ends in "/", which by the AMQP URI spec
# (and librabbitmq) names the EMPTY vhost, not "/"; RabbitMQ refuses that
# too.  The cases below use the URL without the slash (default vhost "/")
# or with "%2f", and check the empty-vhost refusal on its own.

set -u
HOST=${WARREN_HOST:-127.0.0.1}
PORT=${WARREN_PORT:-5672}
BASE="amqp://guest:guest@$HOST:$PORT"
U="$BASE"
T=${WARREN_TMP:-$(mktemp -d)}
cd "$T" || exit 1

if ! command -v amqp-publish >/dev/null; then
	echo "amqp-tools not installed" >&2
	exit 77
fi

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

# run NAME CMD...: stdout to $OUT, stderr to $ERR, status to $RC
run() {
	"$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}

# expect NAME WANT_RC WANT_OUT: compare the last run()
expect() {
	if [ "$RC" != "$2" ]; then
		fail "$1" "exit $RC, wanted $2 (stderr: $ERR)"
	elif [ "$OUT" != "$3" ]; then
		fail "$1" "printed [$OUT], wanted [$3]"
	else
		ok "$1"
	fi
}

# expect_err NAME SUBSTRING: the last run() failed and said SUBSTRING
expect_err() {
	if [ "$RC" = 0 ]; then
		fail "$1" "succeeded, wanted an error containing [$2]"
	else
		case "$ERR" in
		*"$2"*) ok "$1" ;;
		*) fail "$1" "stderr [$ERR] lacks [$2]" ;;
		esac
	fi
}

# ---- URLs and vhosts ---------------------------------------------------

run amqp-declare-queue -u "$BASE/" -q tools-q
expect_err "trailing slash means the empty vhost, refused" \
	"server connection error 530, message: NOT_ALLOWED - vhost  not found"

run amqp-declare-queue -u "$BASE/%2f" -q tools-q
expect "url with %2f vhost" 0 "tools-q"

run amqp-declare-queue --server "$HOST" --port "$PORT" --vhost / -q tools-q
expect "--server/--port/--vhost options" 0 "tools-q"

run amqp-get -u "amqp://guest:wrong@$HOST:$PORT" -q tools-q
expect_err "wrong password refused" \
	"server connection error 403, message: ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"

# ---- declare / publish / get -------------------------------------------

run amqp-declare-queue -u "$U" -q ""
case "$OUT" in
amq.gen-?*) [ "$RC" = 0 ] && ok "server-named queue" || fail "server-named queue" "exit $RC" ;;
*) fail "server-named queue" "printed [$OUT] (stderr: $ERR)" ;;
esac

run amqp-declare-queue -u "$U" -d -q tools-durable
expect "durable declare" 0 "tools-durable"
run amqp-declare-queue -u "$U" -q tools-durable
expect_err "redeclare with other durability" \
	"server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'tools-durable' in vhost '/': received 'false' but current is 'true'"

run amqp-declare-queue -u "$U" -q amq.tools
expect_err "reserved queue name" \
	"server channel error 403, message: ACCESS_REFUSED - queue name 'amq.tools' contains reserved prefix 'amq.*'"

run amqp-publish -u "$U" -r tools-q -b "hello"
expect "publish -b" 0 ""
printf 'one\ntwo\nthree\n' >"$T/lines"
run amqp-publish -u "$U" -r tools-q -l <"$T/lines"
expect "publish -l (three messages)" 0 ""

run amqp-get -u "$U" -q tools-q
expect "get returns the first message" 0 "hello"

run amqp-publish -u "$U" -e no-such-exchange -r x -b y
expect_err "publish to a missing exchange" \
	"server channel error 404, message: NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'"

run amqp-get -u "$U" -q no-such-queue
expect_err "get from a missing queue" \
	"server channel error 404, message: NOT_FOUND - no queue 'no-such-queue' in vhost '/'"

# ---- consume -----------------------------------------------------------

cat >"$T/sink.sh" <<'EOF'
#!/bin/sh
# one line per message: body, then a marker so empty bodies show
printf '%s|\n' "$(cat)" >>"$SINK"
EOF
chmod +x "$T/sink.sh"

run env SINK="$T/consumed" amqp-consume -u "$U" -q tools-q -c 3 "$T/sink.sh"
GOT=$(cat "$T/consumed" 2>/dev/null)
if [ "$RC" = 0 ] && [ "$GOT" = "$(printf 'one|\ntwo|\nthree|')" ]; then
	ok "consume -c 3 in order"
else
	fail "consume -c 3 in order" "exit $RC, got [$GOT] (stderr: $ERR)"
fi

run amqp-get -u "$U" -q tools-q
expect "queue empty after acked consume" 2 ""

for i in 1 2 3 4 5; do amqp-publish -u "$U" -r tools-q -b "m$i"; done
rm -f "$T/consumed"
run env SINK="$T/consumed" amqp-consume -u "$U" -q tools-q -A -p 1 -c 5 "$T/sink.sh"
GOT=$(tr -d '\n' <"$T/consumed" 2>/dev/null)
if [ "$RC" = 0 ] && [ "$GOT" = "m1|m2|m3|m4|m5|" ]; then
	ok "consume -A -p 1 -c 5"
else
	fail "consume -A -p 1 -c 5" "exit $RC, got [$GOT] (stderr: $ERR)"
fi

# amqp-consume -e declares its queue auto-delete; an existing plain queue
# of that name makes the redeclare inequivalent, as on RabbitMQ.
amqp-declare-queue -u "$U" -q tools-bound >/dev/null
run amqp-consume -u "$U" -q tools-bound -e amq.direct -r tools-key -c 1 "$T/sink.sh"
expect_err "consume -e on an existing non-auto-delete queue" \
	"server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'tools-bound' in vhost '/': received 'true' but current is 'false'"

# Without -q it binds a server-named queue; publish until the binding is in
# place and the consumer has had its one message.
rm -f "$T/consumed"
env SINK="$T/consumed" amqp-consume -u "$U" -e amq.direct -r tools-key -c 1 "$T/sink.sh" \
	>"$T/bind.out" 2>"$T/bind.err" &
BIND=$!
for _ in $(seq 50); do
	kill -0 "$BIND" 2>/dev/null || break
	amqp-publish -u "$U" -e amq.direct -r tools-key -b "via binding"
	sleep 0.1
done
if kill -0 "$BIND" 2>/dev/null; then
	kill "$BIND"
	wait "$BIND"
	fail "consume -e binds a server-named queue" "no message after 5 s of publishing"
else
	wait "$BIND"
	RC=$?
	GOT=$(cat "$T/consumed" 2>/dev/null)
	[ "$RC" = 0 ] && [ "$GOT" = "via binding|" ] && ok "consume -e binds a server-named queue" ||
		fail "consume -e binds a server-named queue" "exit $RC, got [$GOT] (stderr: $(cat "$T/bind.err"))"
fi
# An idle consumer at heartbeat=1: both sides must heartbeat for it to
# survive 4 s of silence and still get the message published afterwards.
amqp-declare-queue -u "$U" -q tools-hb >/dev/null
rm -f "$T/consumed"
env SINK="$T/consumed" amqp-consume -u "$U" --heartbeat=1 -q tools-hb -c 1 "$T/sink.sh" \
	>"$T/hb.out" 2>"$T/hb.err" &
HB=$!
sleep 4
amqp-publish -u "$U" -r tools-hb -b "after idle"
for _ in $(seq 50); do
	kill -0 "$HB" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$HB" 2>/dev/null; then
	kill "$HB"
	wait "$HB"
	fail "idle consumer with heartbeat=1" "still waiting 5 s after the publish"
else
	wait "$HB"
	RC=$?
	GOT=$(cat "$T/consumed" 2>/dev/null)
	[ "$RC" = 0 ] && [ "$GOT" = "after idle|" ] && ok "idle consumer with heartbeat=1" ||
		fail "idle consumer with heartbeat=1" "exit $RC, got [$GOT] (stderr: $(cat "$T/hb.err"))"
fi

# ---- large body ----------------------------------------------------------

head -c 3000000 /dev/urandom | base64 -w 0 >"$T/big"
run amqp-publish -u "$U" -r tools-q <"$T/big"
expect "publish a 4 MB body from stdin" 0 ""
amqp-get -u "$U" -q tools-q >"$T/big.got" 2>"$T/err"
if cmp -s "$T/big" "$T/big.got"; then
	ok "4 MB body comes back intact"
else
	fail "4 MB body comes back intact" "got $(wc -c <"$T/big.got") bytes (stderr: $(cat "$T/err"))"
fi

# ---- delete --------------------------------------------------------------

amqp-publish -u "$U" -r tools-q -b "left"
amqp-publish -u "$U" -r tools-q -b "over"
run amqp-delete-queue -u "$U" -q tools-q --if-empty
expect_err "delete --if-empty on a non-empty queue" \
	"server channel error 406, message: PRECONDITION_FAILED - queue 'tools-q' in vhost '/' not empty"
run amqp-delete-queue -u "$U" -q tools-q
expect "delete prints the message count" 0 "2"
run amqp-delete-queue -u "$U" -q tools-q
expect "deleting a missing queue is not an error" 0 "0"
run amqp-get -u "$U" -q tools-q
expect_err "deleted queue is gone" "NOT_FOUND - no queue 'tools-q' in vhost '/'"
for q in tools-durable tools-bound tools-hb; do
	amqp-delete-queue -u "$U" -q "$q" >/dev/null
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
