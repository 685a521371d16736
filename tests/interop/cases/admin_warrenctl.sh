#!/usr/bin/env bash
# timeout: 90
# warrenctl against the broker's admin socket ($WARREN_DATA_DIR/warrend.sock):
# status, vhosts, users and permissions, a queue declared and filled by pika
# showing up in list_queues with its counts, purge and delete, closing a
# pika connection (which must see 320 CONNECTION_FORCED with our reason),
# definitions exported and imported into a second, fresh broker with the
# same result, and the exit statuses: 2 for usage errors, 1 when the broker
# says no, 69 when no daemon answers.
set -u

CTL=${WARRENCTL:-$(dirname "$WARREN_BIN")/warrenctl}
T=$WARREN_TMP
PY=/usr/bin/python3
cd "$T" || exit 1
[ -x "$CTL" ] || { echo "warrenctl not found at $CTL" >&2; exit 1; }
[ -x "$PY" ] && "$PY" -c 'import pika' 2>/dev/null || { echo "python3-pika missing" >&2; exit 77; }

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

# run CMD...: stdout to $OUT, stderr to $ERR, status to $RC
run() {
	"$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
# expect NAME WANT_RC WANT_OUT
expect() {
	if [ "$RC" != "$2" ]; then
		fail "$1" "exit $RC, wanted $2 (stdout: $OUT) (stderr: $ERR)"
	elif [ "$OUT" != "$3" ]; then
		fail "$1" "printed [$OUT], wanted [$3]"
	else
		ok "$1"
	fi
}
# expect_err NAME WANT_RC SUBSTRING
expect_err() {
	if [ "$RC" != "$2" ]; then
		fail "$1" "exit $RC, wanted $2 (stderr: $ERR)"
	else
		case "$ERR" in
		*"$3"*) ok "$1" ;;
		*) fail "$1" "stderr [$ERR] lacks [$3]" ;;
		esac
	fi
}

W() { "$CTL" -q -d "$WARREN_DATA_DIR" "$@"; }

# The daemon creates the socket before it accepts AMQP, so it is there.
if [ ! -S "$WARREN_DATA_DIR/warrend.sock" ]; then
	echo "no admin socket at $WARREN_DATA_DIR/warrend.sock (is admin_open wired into warrend?)" >&2
	exit 1
fi
mode=$(stat -c %a "$WARREN_DATA_DIR/warrend.sock")
[ "$mode" = 600 ] && ok "socket mode 0600" || fail "socket mode 0600" "mode $mode"

# ---- status and usage ----------------------------------------------------

run W status
if [ "$RC" = 0 ] && grep -q "^listeners: *\[127.0.0.1:$WARREN_PORT\]" "$T/out" &&
	grep -q "^version: *[0-9]" "$T/out"; then
	ok "status"
else
	fail "status" "exit $RC: $OUT $ERR"
fi
run W -f json status
if [ "$RC" = 0 ] && "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["product"]=="Warren" and d["queues"]==0' "$T/out"; then
	ok "status as JSON"
else
	fail "status as JSON" "exit $RC: $OUT"
fi

run W no_such_command
expect_err "unknown command exits 2" 2 "unknown command 'no_such_command'"
run W list_queues no_such_column
expect_err "unknown column exits 2" 2 "unknown column 'no_such_column'"
run W add_user onlyname
expect_err "missing argument exits 2" 2 "usage: warrenctl add_user"
run "$CTL" -s "$T/nobody.sock" status
expect_err "no daemon exits 69" 69 "cannot reach warrend"
run "$CTL" --version
[[ "$RC" = 0 && "$OUT" =~ ^warrenctl\ [0-9]+\.[0-9]+ ]] && ok "--version" || fail "--version" "$OUT"

# ---- vhosts, users, permissions -----------------------------------------

run W add_vhost shop
expect "add_vhost" 0 ""
run W list_vhosts
expect "list_vhosts" 0 "$(printf 'name\n/\nshop')"
run W add_user app s3cret --tags monitoring,management
expect "add_user" 0 ""
run W add_user app other
expect_err "add_user twice exits 1" 1 'User "app" already exists'
run W set_permissions -p shop app '^app-' '^app-' '.*'
expect "set_permissions" 0 ""
run W set_permissions -p nowhere app '' '' ''
expect_err "set_permissions in a missing vhost" 1 'Virtual host "nowhere" does not exist'
run W list_users
expect "list_users" 0 "$(printf 'user   tags\napp    [monitoring, management]\nguest  [administrator]')"
run W list_permissions -p shop
expect "list_permissions" 0 "$(printf 'user  configure  write  read\napp   ^app-      ^app-  .*')"
run W authenticate_user app s3cret
expect "authenticate_user" 0 ""
run W authenticate_user app wrong
expect_err "authenticate_user, wrong password" 1 "user 'app' - invalid credentials"

# ---- queues -----------------------------------------------------------------

run "$PY" - "$WARREN_PORT" <<'EOF'
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(sys.argv[1])))
ch = c.channel()
ch.queue_declare("admin-q", durable=True, arguments={"x-max-length": 100})
ch.exchange_declare("admin-x", "topic", durable=True)
ch.queue_bind("admin-q", "admin-x", "a.#")
ch.confirm_delivery()
for i in range(3):
    ch.basic_publish("admin-x", "a.b", b"m%d" % i)
c.close()
EOF
[ "$RC" = 0 ] && ok "pika declares and publishes" || fail "pika declares and publishes" "$ERR"
run W list_queues name messages consumers durable
expect "list_queues shows the messages" 0 "$(printf 'name     messages  consumers  durable\nadmin-q  3         0          true')"
run W -f json list_queues name messages arguments
expect "list_queues as JSON" 0 "$(printf '[\n{"name":"admin-q","messages":3,"arguments":{"x-max-length":100}}\n]')"
run W list_bindings -p shop
expect "list_bindings in an empty vhost" 0 "source_name  source_kind  destination_name  destination_kind  routing_key  arguments"
run W list_queues -p nowhere
expect_err "list_queues in a missing vhost" 1 'Virtual host "nowhere" does not exist'

# ---- definitions round trip into a fresh broker -------------------------

run W export_definitions "$T/defs.json"
expect "export_definitions" 0 ""
if "$PY" - "$T/defs.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert [q["name"] for q in d["queues"]] == ["admin-q"], d["queues"]
assert d["queues"][0]["arguments"] == {"x-max-length": 100}
assert [x["name"] for x in d["exchanges"]] == ["admin-x"]
assert d["bindings"][0]["routing_key"] == "a.#"
assert sorted(u["name"] for u in d["users"]) == ["app", "guest"]
assert all(u["hashing_algorithm"] == "rabbit_password_hashing_sha256" for u in d["users"])
assert {"user": "app", "vhost": "shop", "configure": "^app-", "write": "^app-", "read": ".*"} in d["permissions"]
EOF
then ok "exported file has RabbitMQ's shape"; else fail "exported file has RabbitMQ's shape" "$(cat "$T/defs.json")"; fi

port2=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/data2"
"$WARREN_BIN" --foreground --listen "127.0.0.1:$port2" --data-dir "$T/data2" >"$T/broker2.log" 2>&1 &
B2=$!
for _ in $(seq 100); do [ -S "$T/data2/warrend.sock" ] && break; sleep 0.05; done
W2() { "$CTL" -q -d "$T/data2" "$@"; }
run W2 import_definitions "$T/defs.json"
expect "import_definitions into a fresh broker" 0 ""
run W2 export_definitions -
if [ "$RC" = 0 ] && [ "$OUT" = "$(cat "$T/defs.json")" ]; then
	ok "re-export is identical"
else
	fail "re-export is identical" "exit $RC: $(diff <(echo "$OUT") "$T/defs.json")"
fi
run W2 authenticate_user app s3cret
expect "imported password hash works" 0 ""
run W2 list_queues name messages
expect "imported queue is empty" 0 "$(printf 'name     messages\nadmin-q  0')"
printf '{"queues":[{"name":"q","vhost":"nowhere"}]}' >"$T/bad.json"
run W2 import_definitions "$T/bad.json"
expect_err "import of a bad file exits 1" 1 "virtual host 'nowhere' does not exist"
printf '{"queues":[' >"$T/broken.json"
run W2 import_definitions "$T/broken.json"
expect_err "import of broken JSON names the spot" 1 "line 1, column 12"
kill -TERM "$B2"
wait "$B2"
[ $? = 0 ] && ok "second broker stops cleanly" || fail "second broker stops cleanly" "$(tail -n5 "$T/broker2.log")"

# ---- purge, delete ------------------------------------------------------------

run W purge_queue admin-q
expect "purge_queue" 0 ""
run W list_queues name messages
expect "queue empty after purge" 0 "$(printf 'name     messages\nadmin-q  0')"
run W purge_queue no-such-q
expect_err "purge of an unknown queue exits 1" 1 "NOT_FOUND - no queue 'no-such-q' in vhost '/'"
run W delete_queue no-such-q
expect_err "delete of an unknown queue exits 1" 1 "NOT_FOUND - no queue 'no-such-q' in vhost '/'"
run W delete_queue admin-q
expect "delete_queue" 0 ""
run W list_queues
expect "no queues left" 0 "name  messages"

# ---- close_connection ----------------------------------------------------

"$PY" - "$WARREN_PORT" "$T/closed" <<'EOF' &
import sys, pika
params = pika.ConnectionParameters("127.0.0.1", int(sys.argv[1]),
                                   client_properties={"connection_name": "admin-victim"})
c = pika.BlockingConnection(params)
open(sys.argv[2] + ".ready", "w").close()
try:
    c.process_data_events(time_limit=20)
    result = "not closed"
except pika.exceptions.ConnectionClosedByBroker as e:
    result = "%d %s" % (e.reply_code, e.reply_text)
open(sys.argv[2], "w").write(result)
EOF
VICTIM=$!
for _ in $(seq 100); do [ -e "$T/closed.ready" ] && break; sleep 0.05; done
run W list_connections user_provided_name user vhost state
expect "list_connections" 0 "$(printf 'user_provided_name  user   vhost  state\nadmin-victim        guest  /      running')"
run W close_connection admin-victim "maintenance window"
expect "close_connection" 0 ""
wait "$VICTIM"
GOT=$(cat "$T/closed" 2>/dev/null)
[ "$GOT" = "320 CONNECTION_FORCED - maintenance window" ] && ok "client saw 320 with the reason" ||
	fail "client saw 320 with the reason" "got [$GOT]"
run W close_connection admin-victim again
expect_err "closing an unknown connection exits 1" 1 "no connection named 'admin-victim'"

# ---- the rest -------------------------------------------------------------------

run W log_level debug
expect "log_level" 0 "debug"
run W log_level loud
expect_err "bad log level exits 1" 1 "unknown log level 'loud'"
run W log_level info
run W delete_user app
expect "delete_user" 0 ""
run W delete_vhost shop
expect "delete_vhost" 0 ""
run W list_vhosts
expect "vhost gone" 0 "$(printf 'name\n/')"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
