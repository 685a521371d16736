#!/usr/bin/env bash
# broker: none
# timeout: 120
# Start-up hardening, against brokers this case runs itself:
#  - a world-writable data directory (even with the sticky bit) stops
#    warrend with exit 1 and one line naming it;
#  - a TLS private key readable by others or by its group is logged as a
#    warning naming the file, and the broker starts anyway; mode 0600 gives
#    no warning;
#  - [security] user / --user: an unknown user is exit 1; as root, warrend
#    binds, hands the data directory's contents to the user (without
#    following symbolic links) and runs as that user, still serving AMQP
#    and warrenctl, and a restart as that user recovers a durable queue; an
#    existing data directory that belongs to someone else is refused; not
#    as root, switching to another user is refused.  The root-only parts
#    are skipped (and say so) when the case does not run as root.
set -u
: "${WARREN_BIN:?WARREN_BIN not set}"
T=${WARREN_TMP:-$(mktemp -d)}
SRC=${WARREN_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
CTL=$(dirname "$WARREN_BIN")/warrenctl
cd "$T" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] && "$PY" -c 'import pika' 2>/dev/null || { echo "python3-pika missing" >&2; exit 77; }

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

BROKER=
# start NAME DATA_DIR ARGS...: a broker on a free port; sets PORT, LOG
start() {
	local name=$1 dir=$2
	shift 2
	PORT=$(free_port)
	LOG="$T/$name.log"
	"$WARREN_BIN" --foreground --listen "127.0.0.1:$PORT" --data-dir "$dir" "$@" \
		>"$LOG" 2>&1 </dev/null &
	BROKER=$!
	for _ in $(seq 100); do
		if ! kill -0 "$BROKER" 2>/dev/null; then
			wait "$BROKER"
			BROKER=
			return 1
		fi
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "broker $name not listening after 10 s" >&2
	return 1
}

# stop: SIGTERM, and the broker must exit 0
stop() {
	[ -n "$BROKER" ] || return 0
	kill -TERM "$BROKER"
	wait "$BROKER"
	local rc=$?
	BROKER=
	return $rc
}
trap '[ -n "$BROKER" ] && kill -KILL "$BROKER" 2>/dev/null' EXIT

# run_fail NAME WANT_STDERR ARGS...: warrend must exit 1 at start, saying WANT
run_fail() {
	local name=$1 want=$2
	shift 2
	timeout 20 "$WARREN_BIN" --foreground --listen "127.0.0.1:$(free_port)" "$@" \
		>"$T/out" 2>"$T/err" </dev/null
	local rc=$?
	if [ "$rc" != 1 ]; then
		fail "$name" "exit $rc, wanted 1 ($(cat "$T/err"))"
	elif ! grep -qF -- "$want" "$T/err"; then
		fail "$name" "stderr [$(cat "$T/err")] lacks [$want]"
	else
		ok "$name"
	fi
}

# amqp PORT SCRIPT: run python with a pika channel `ch` on the broker
amqp() {
	$PY - "$1" <<EOF
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(sys.argv[1])))
ch = c.channel()
$2
c.close()
EOF
}

# ---- the data directory -------------------------------------------------------

mkdir -p "$T/ww"
chmod 0777 "$T/ww"
run_fail "world-writable data dir refused" \
	"data dir $T/ww is writable by every user (mode 0777); run: chmod o-w $T/ww" \
	--data-dir "$T/ww"
chmod 1777 "$T/ww"
run_fail "world-writable data dir refused with the sticky bit" \
	"data dir $T/ww is writable by every user (mode 1777)" --data-dir "$T/ww"
[ ! -e "$T/ww/warrend.pid" ] && ok "nothing written to the refused dir" ||
	fail "nothing written to the refused dir" "$(ls "$T/ww")"
chmod 0750 "$T/ww"
if start ww-fixed "$T/ww" && stop; then
	ok "the same dir once fixed"
else
	fail "the same dir once fixed" "$(cat "$LOG")"
fi

# ---- TLS key modes ----------------------------------------------------------

if command -v openssl >/dev/null; then
	"$SRC/scripts/make-certs" "$T/pki" >/dev/null || exit 1
	key=$T/pki/server.key
	tls_check() { # NAME MODE FILE-ARGS... : start with TLS, return the log
		local name=$1 mode=$2 file=$3
		shift 3
		chmod "$mode" "$file"
		if start "$name" "$T/$name-data" --tls-listen "127.0.0.1:$(free_port)" "$@"; then
			stop || fail "$name" "exit status $?"
		else
			fail "$name" "broker did not start: $(cat "$LOG")"
		fi
	}
	tls_check tls-0644 0644 "$key" --tls-cert "$T/pki/server.pem" --tls-key "$key"
	want="TLS private key file $key is readable by every user (mode 0644); run: chmod 600 $key"
	grep -qF "$want" "$LOG" && ok "world-readable key warned about" ||
		fail "world-readable key warned about" "log lacks [$want]"
	tls_check tls-0640 0640 "$key" --tls-cert "$T/pki/server.pem" --tls-key "$key"
	grep -qF "TLS private key file $key is readable by its group (mode 0640)" "$LOG" &&
		ok "group-readable key warned about" ||
		fail "group-readable key warned about" "$(grep -i 'tls' "$LOG")"
	tls_check tls-0600 0600 "$key" --tls-cert "$T/pki/server.pem" --tls-key "$key"
	grep -q "TLS private key" "$LOG" && fail "mode 0600 key: no warning" "$(grep key "$LOG")" ||
		ok "mode 0600 key: no warning"
	# a key inside the certificate file counts as the key
	cat "$T/pki/server.pem" "$key" >"$T/pki/both.pem"
	tls_check tls-both 0644 "$T/pki/both.pem" --tls-cert "$T/pki/both.pem"
	grep -qF "TLS private key file $T/pki/both.pem (with the certificate) is readable by every user" \
		"$LOG" && ok "key in the certificate file warned about" ||
		fail "key in the certificate file warned about" "$(grep -i 'key' "$LOG")"
else
	echo "skip TLS key modes: no openssl"
fi

# ---- the user to run as -------------------------------------------------------

run_fail "unknown user refused" "user 'no-such-user-$$': no such user" \
	--data-dir "$T/u0" --user "no-such-user-$$"
printf '[security]\nuser = no-such-user-%s\n' "$$" >"$T/user.conf"
run_fail "unknown user from the config file refused" "user 'no-such-user-$$': no such user" \
	--data-dir "$T/u0" --config "$T/user.conf"

if [ "$(id -u)" != 0 ]; then
	run_fail "switching users needs root" "cannot switch to user 'root': not started as root" \
		--data-dir "$T/u0" --user root
	echo "skip privilege dropping: not running as root"
else
	RUNAS=nobody
	id "$RUNAS" >/dev/null 2>&1 || { echo "skip privilege dropping: no user $RUNAS"; RUNAS=; }
fi

if [ "$(id -u)" = 0 ] && [ -n "${RUNAS:-}" ]; then
	uid=$(id -u "$RUNAS")
	# the scratch dir is root's and 0700: let the user reach its data dir
	chmod 0711 "$T"
	D=$T/drop-data
	# an outside file a symbolic link inside points at stays root's
	echo keep >"$T/outside"
	if start drop "$D" --user "$RUNAS"; then
		st=$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$BROKER/status")
		[ "$st" = "$uid$uid$uid$uid" ] && ok "runs as $RUNAS" ||
			fail "runs as $RUNAS" "Uid: $st"
		grep -qF "running as user '$RUNAS' (uid $uid" "$LOG" && ok "switch logged" ||
			fail "switch logged" "$(cat "$LOG")"
		bad=$(find "$D" ! -user "$RUNAS")
		[ -z "$bad" ] && ok "data dir handed over" || fail "data dir handed over" "$bad"
		out=$(amqp "$PORT" '
ch.queue_declare("sec-durable", durable=True)
ch.basic_publish("", "sec-durable", b"kept", pika.BasicProperties(delivery_mode=2))
print("published")' 2>&1)
		[ "$out" = published ] && ok "serves AMQP as $RUNAS" || fail "serves AMQP as $RUNAS" "$out"
		out=$("$CTL" -q -d "$D" list_queues name messages 2>&1)
		case "$out" in
		*sec-durable*1*) ok "warrenctl (as root) talks to it" ;;
		*) fail "warrenctl (as root) talks to it" "$out" ;;
		esac
		if stop; then ok "stops with exit 0 as $RUNAS"; else fail "stops with exit 0 as $RUNAS" "$?"; fi
		[ ! -e "$D/warrend.pid" ] && ok "pid file removed" || fail "pid file removed" "still there"
	else
		fail "start with --user $RUNAS" "$(cat "$LOG")"
	fi

	# root's leftovers inside are handed over; a link is not followed
	touch "$D/root-file"
	ln -s "$T/outside" "$D/link"
	if start drop2 "$D" --user "$RUNAS"; then
		[ "$(stat -c %U "$D/root-file")" = "$RUNAS" ] && ok "root's files inside handed over" ||
			fail "root's files inside handed over" "$(stat -c %U "$D/root-file")"
		[ "$(stat -c %U "$T/outside")" = root ] && ok "symbolic link not followed" ||
			fail "symbolic link not followed" "$(stat -c %U "$T/outside")"
		out=$(amqp "$PORT" 'print(ch.queue_declare("sec-durable", passive=True).method.message_count)' 2>&1)
		[ "$out" = 1 ] && ok "durable queue recovered as $RUNAS" ||
			fail "durable queue recovered as $RUNAS" "$out"
		stop || fail "drop2 stop" "exit $?"
	else
		fail "restart with --user $RUNAS" "$(cat "$LOG")"
	fi

	# an existing dir of someone else's is not taken over
	mkdir -p "$T/roots"
	chmod 0750 "$T/roots"
	run_fail "someone else's data dir refused" \
		"data dir $T/roots belongs to uid 0, not to user '$RUNAS' ([security] user); run: chown -R $RUNAS $T/roots" \
		--data-dir "$T/roots" --user "$RUNAS"
	[ "$(stat -c %U "$T/roots")" = root ] && ok "and left alone" || fail "and left alone" "chowned"

	# [security] user in the file does the same as --user
	printf '[security]\nuser = %s\n' "$RUNAS" >"$T/runas.conf"
	if start conf-user "$T/conf-data" --config "$T/runas.conf"; then
		st=$(awk '/^Uid:/ { print $2 }' "/proc/$BROKER/status")
		[ "$st" = "$uid" ] && ok "[security] user" || fail "[security] user" "uid $st"
		stop || fail "conf-user stop" "exit $?"
	else
		fail "[security] user" "$(cat "$LOG")"
	fi

	# not root any more: switching to another user is refused
	if command -v setpriv >/dev/null; then
		mkdir -p "$T/nb"
		chown "$RUNAS" "$T/nb"
		timeout 20 setpriv --reuid="$RUNAS" --regid="$(id -g "$RUNAS")" --clear-groups \
			"$WARREN_BIN" --foreground --listen "127.0.0.1:$(free_port)" --data-dir "$T/nb" \
			--user root >"$T/out" 2>"$T/err" </dev/null
		rc=$?
		if [ "$rc" = 1 ] && grep -qF "cannot switch to user 'root': not started as root" "$T/err"; then
			ok "switching users needs root"
		else
			fail "switching users needs root" "exit $rc: $(cat "$T/err")"
		fi
	fi
	# root warned about running as root without a user
	start as-root "$T/root-data" && stop
	grep -qF "running as root: set [security] user to drop privileges" "$LOG" &&
		ok "warning when running as root" || fail "warning when running as root" "$(cat "$LOG")"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
