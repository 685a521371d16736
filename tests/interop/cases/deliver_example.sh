#!/usr/bin/env bash
# timeout: 120
# The order-flow example (examples/order-flow) against the harness broker:
# run.sh must succeed, every service must report every order exactly once,
# and the three durable queues must be empty (everything acked) afterwards.
set -u

orders=20
out="$WARREN_TMP/order-flow.out"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

ORDERS=$orders "$WARREN_SRCDIR/examples/order-flow/run.sh" "$WARREN_URL" >"$out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then ok "run.sh exits 0"; else fail "run.sh exited $rc"; fi

run=$(sed -n 's/^order-flow: broker .*, run \(.*\)$/\1/p' "$out")
if [ -n "$run" ]; then ok "run id $run"; else fail "no run id in the output"; fi

for who in orders email invoice inventory; do
	missing=()
	for n in $(seq $orders); do
		id=$(printf '%s-%04d' "$run" "$n")
		count=$(grep -F "[$who]" "$out" | grep -c -F "order $id")
		if [ "$count" -ne 1 ]; then
			missing+=("$id x$count")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		ok "$who: each of the $orders orders exactly once"
	else
		fail "$who: ${missing[*]}"
	fi
done

for who in email invoice inventory; do
	if grep -q -F "[$who]" "$out" && grep -F "[$who]" "$out" | grep -q "handled $orders of $orders orders"; then
		ok "$who reports $orders of $orders"
	else
		fail "$who did not report $orders of $orders"
	fi
done

if grep -q "every service handled all $orders orders" "$out"; then
	ok "summary line"
else
	fail "no summary line"
fi

depths=$(/usr/bin/python3 - <<'EOF'
import os
import pika
c = pika.BlockingConnection(pika.URLParameters(os.environ["WARREN_URL"]))
ch = c.channel()
print(" ".join(str(ch.queue_declare("orders." + s, passive=True).method.message_count)
               for s in ("email", "invoice", "inventory")))
c.close()
EOF
)
if [ "$depths" = "0 0 0" ]; then
	ok "queues drained and acked"
else
	fail "queue depths after the run: '$depths'"
fi

if [ $failed -ne 0 ]; then
	echo "--- run.sh output ---"
	cat "$out"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
