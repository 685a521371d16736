#!/usr/bin/env bash
# timeout: 30
# The harness's own contract with warrend, before any AMQP is spoken:
# the binary reports its version, rejects unknown flags with status 2, the
# broker the harness started accepts TCP connections on WARREN_PORT, and a
# second broker asked for the same address fails at once, non-zero, naming
# the problem on stderr.
set -euo pipefail

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

version=$("$WARREN_BIN" --version)
[[ "$version" =~ ^warrend\ [0-9]+\.[0-9]+\.[0-9]+$ ]] ||
	fail "--version printed '$version'"

rc=0
"$WARREN_BIN" --no-such-flag >/dev/null 2>"$WARREN_TMP/badflag.log" || rc=$?
[ "$rc" -eq 2 ] || fail "unknown flag: exit status $rc, want 2"
[ -s "$WARREN_TMP/badflag.log" ] || fail "unknown flag: nothing on stderr"

exec 3<>"/dev/tcp/$WARREN_HOST/$WARREN_PORT" ||
	fail "cannot connect to $WARREN_HOST:$WARREN_PORT"
exec 3<&- 3>&-

mkdir -p "$WARREN_TMP/data2"
rc=0
timeout 10 "$WARREN_BIN" --foreground --listen "$WARREN_HOST:$WARREN_PORT" \
	--data-dir "$WARREN_TMP/data2" >"$WARREN_TMP/second-broker.log" 2>&1 || rc=$?
[ "$rc" -ne 124 ] || fail "second broker on a busy port kept running"
[ "$rc" -ne 0 ] || fail "second broker on a busy port exited 0"
[ -s "$WARREN_TMP/second-broker.log" ] ||
	fail "second broker on a busy port said nothing"
grep -qiE "$WARREN_PORT|in use" "$WARREN_TMP/second-broker.log" ||
	fail "second broker's error does not name the port: $(cat "$WARREN_TMP/second-broker.log")"

echo "ok: $version; busy port refused with status $rc: $(head -n1 "$WARREN_TMP/second-broker.log")"
