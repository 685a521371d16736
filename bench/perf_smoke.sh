#!/bin/sh
# warren-perf against a real warrend: every mode runs briefly and its
# summary must report what was asked for (counts that add up, confirms,
# RSS figures), so the generator's protocol paths (publish, consume,
# manual and multiple acks, confirms, fanout/topic topology, queue
# arguments, idle connections, pipelined declarations, churn) stay honest.
# Exit 77 (skip) when the binaries are not built.
: "${top_builddir:=.}"
warrend=$top_builddir/src/warrend
perf=$top_builddir/bench/warren-perf
[ -x "$warrend" ] && [ -x "$perf" ] || { echo "binaries not built: skipping"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/warren-perf-smoke.XXXXXX") || exit 99
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# a free port: try a few at random
for try in 1 2 3 4 5 6 7 8; do
	port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000 ))
	"$warrend" -f -l "127.0.0.1:$port" -d "$tmp" --log-level warning \
		>"$tmp/warrend.log" 2>&1 &
	pid=$!
	sleep 0.5
	kill -0 "$pid" 2>/dev/null && break
	pid=
done
[ -n "$pid" ] || { cat "$tmp/warrend.log"; echo "warrend did not start"; exit 99; }

status=0
# run NAME ARGS...: run warren-perf, keep its summary in $tmp/NAME
run() {
	name=$1
	shift
	if ! "$perf" -p "$port" --quiet "$@" >"$tmp/$name" 2>"$tmp/$name.err"; then
		echo "FAIL $name: warren-perf $*"
		cat "$tmp/$name.err"
		status=1
		return 1
	fi
}
# get NAME KEY: a value from a summary
get() {
	sed -n "s/^$2=//p" "$tmp/$1"
}
# expect NAME TEST...: a shell test over the values, printed on failure
expect() {
	name=$1
	shift
	if ! eval "$*"; then
		echo "FAIL $name: $*"
		cat "$tmp/$name"
		status=1
	fi
}

run direct --count 3000 --producers 2 --consumers 2 --queues 2 --threads 2 \
	--size 64 --confirm 50 --prefetch 20 --multi-ack 4 --persistent --durable &&
	expect direct '[ "$(get direct published)" = 6000 ] &&
		[ "$(get direct delivered)" = 6000 ] &&
		[ "$(get direct confirmed)" = 6000 ] &&
		[ "$(get direct latency_samples)" = 6000 ] &&
		[ -n "$(get direct confirm_latency_p99_us)" ]'

run fanout --count 500 --exchange-type fanout --queues 3 --consumers 3 \
	--auto-ack --size 200000 &&
	expect fanout '[ "$(get fanout published)" = 500 ] &&
		[ "$(get fanout delivered)" = 1500 ]'

run topic --count 1000 --exchange-type topic --bindings 50 --queues 2 \
	--consumers 2 --auto-ack &&
	expect topic '[ "$(get topic delivered)" = 1000 ]'

run maxlen --count 100 --consumers 0 --confirm 10 \
	--queue-args x-max-length=10,x-overflow=reject-publish &&
	expect maxlen '[ "$(get maxlen confirmed)" = 10 ] &&
		[ "$(get maxlen nacked)" = 90 ]'

run paced --time 1 --rate 200 --auto-ack &&
	expect paced '[ "$(get paced published)" -ge 180 ] &&
		[ "$(get paced published)" -le 220 ]'

run json --count 10 --auto-ack --json &&
	expect json 'grep -q "^{\"mode\": \"throughput\", .*\"delivered\": 10," "$tmp/json"'

run conns --mode connections --count 50 --threads 2 --broker-pid "$pid" &&
	expect conns '[ "$(get conns connections)" = 50 ] &&
		[ -n "$(get conns rss_per_connection_kb)" ]'

run queues --mode queues --count 300 --broker-pid "$pid" &&
	expect queues '[ "$(get queues queues)" = 300 ] &&
		[ -n "$(get queues rss_per_queue_kb)" ]'

run churn --mode churn --time 1 &&
	expect churn '[ "$(get churn cycles)" -gt 0 ]'

# the broker's refusal is reported, with its text
if "$perf" -p "$port" --quiet --uri "amqp://guest:guest@127.0.0.1/nope" \
	--count 1 >/dev/null 2>"$tmp/refused"; then
	echo "FAIL: an unknown vhost was accepted"
	status=1
elif ! grep -q "vhost" "$tmp/refused"; then
	echo "FAIL: no reason given for the refusal:"
	cat "$tmp/refused"
	status=1
fi
exit $status
