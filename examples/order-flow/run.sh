#!/usr/bin/env bash
# The order-flow example in one command:
#
#     examples/order-flow/run.sh [AMQP_URL]        (ORDERS=N to place N orders)
#
# starts the email, invoice and inventory services, waits until each has its
# queue bound, places the orders, and waits for every service to handle every
# order.  Exits 0 only if all three handled all of them.  AMQP_URL defaults to
# $AMQP_URL, then amqp://guest:guest@127.0.0.1:5672/%2F (a local warrend).
set -u

here=$(cd "$(dirname "$0")" && pwd)
export AMQP_URL=${1:-${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}}
orders=${ORDERS:-5}

# pika is the only dependency; Debian's interpreter has it even when the
# python3 first on PATH (a pyenv or venv build) does not.
py=
for cand in ${PYTHON:-} python3 /usr/bin/python3; do
	if "$cand" -c 'import pika' 2>/dev/null; then
		py=$cand
		break
	fi
done
if [ -z "$py" ]; then
	echo "run.sh: no python3 with pika found (apt install python3-pika, or set PYTHON)" >&2
	exit 2
fi

# keep the source tree free of __pycache__ directories
export PYTHONDONTWRITEBYTECODE=1
ready=$(mktemp -d)
export ORDER_FLOW_READY_DIR=$ready
run_id="o$(date +%H%M%S)"
services=(email invoice inventory)
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$ready"
}
trap cleanup EXIT

echo "order-flow: broker $AMQP_URL, $orders orders, run $run_id"
for s in "${services[@]}"; do
	"$py" "$here/${s}_service.py" --expect "$orders" --run "$run_id" &
	pids+=($!)
done

# An event published before a service's queue is bound would not reach it,
# so place orders only once every service reports its queue ready.
for _ in $(seq 100); do
	n=$(find "$ready" -type f | wc -l)
	[ "$n" -eq ${#services[@]} ] && break
	for p in "${pids[@]}"; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "order-flow: a service exited before it was ready" >&2
			exit 1
		fi
	done
	sleep 0.1
done
if [ "$(find "$ready" -type f | wc -l)" -ne ${#services[@]} ]; then
	echo "order-flow: services not ready after 10 s" >&2
	exit 1
fi

status=0
"$py" "$here/order_service.py" --orders "$orders" --run "$run_id" || status=1

for i in "${!pids[@]}"; do
	if ! wait "${pids[$i]}"; then
		echo "order-flow: the ${services[$i]} service did not handle every order" >&2
		status=1
	fi
done
pids=()
if [ $status -eq 0 ]; then
	echo "order-flow: every service handled all $orders orders"
fi
exit $status
