"""What the order-flow services share: where the broker is, the topology
(one topic exchange, one durable queue per service), and a consumer loop
with manual acks.

The topology is declared by whoever needs it, every time: declarations are
idempotent, so a service that starts before the order service (or after a
broker restart) finds its queue and binding in place.  Each service owns its
queue; the order service only knows the exchange and the routing key."""

import json
import os
import signal
import sys
import time

import pika

EXCHANGE = "orders"
ROUTING_KEY = "order.placed"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def say(line, out=sys.stdout):
    """Print one line with a single write: the services share one terminal,
    and print() with flush=True can split a line from its newline."""
    out.write(line + "\n")
    out.flush()


def url():
    return os.environ.get("AMQP_URL") or DEFAULT_URL


def connect():
    params = pika.URLParameters(url())
    params.heartbeat = 30
    return pika.BlockingConnection(params)


def declare_exchange(ch):
    ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)


def queue_name(service):
    return "orders.%s" % service


def run_service(service, handle, expect=None, idle_timeout=30.0, run_id=None):
    """Consume OrderPlaced events for one service until `expect` orders of
    run `run_id` were handled (or forever when expect is None).

    handle(order) does the service's work and returns one line describing
    it.  A message is acked only after handle() returned, so a crash in the
    middle leaves it in the queue for the next start (at-least-once); the
    set of seen order ids makes a redelivery harmless."""
    tag = "[%s]" % service
    conn = connect()
    ch = conn.channel()
    declare_exchange(ch)
    q = queue_name(service)
    ch.queue_declare(q, durable=True)
    ch.queue_bind(q, EXCHANGE, routing_key=ROUTING_KEY)
    ch.basic_qos(prefetch_count=10)

    seen = set()
    state = {"mine": 0, "last": time.monotonic()}

    def on_message(channel, method, props, body):
        state["last"] = time.monotonic()
        try:
            order = json.loads(body)
            order_id = order["order_id"]
        except (ValueError, KeyError, TypeError) as e:
            say("%-12s rejected a malformed message: %s" % (tag, e))
            channel.basic_reject(method.delivery_tag, requeue=False)
            return
        if order_id in seen:
            say("%-12s order %s again (redelivered=%s): already done" %
                (tag, order_id, method.redelivered))
        else:
            seen.add(order_id)
            say("%-12s order %s: %s" % (tag, order_id, handle(order)))
            if run_id is None or order.get("run") == run_id:
                state["mine"] += 1
        channel.basic_ack(method.delivery_tag)
        if expect is not None and state["mine"] >= expect:
            channel.stop_consuming()

    ch.basic_consume(q, on_message)
    say("%-12s ready: queue %s bound to %s with %s" % (tag, q, EXCHANGE, ROUTING_KEY))
    ready = os.environ.get("ORDER_FLOW_READY_DIR")  # run.sh waits for these files
    if ready:
        with open(os.path.join(ready, service), "w") as f:
            f.write("ready\n")

    stop = {"signal": False}

    def on_signal(signum, frame):
        stop["signal"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop["signal"]:
        if expect is not None and state["mine"] >= expect:
            break
        if expect is not None and time.monotonic() - state["last"] > idle_timeout:
            say("%-12s gave up: no message for %.0f s" % (tag, idle_timeout))
            break
        conn.process_data_events(time_limit=0.2)
    conn.close()
    done = state["mine"]
    if expect is not None:
        say("%-12s handled %d of %d orders" % (tag, done, expect))
        return 0 if done >= expect else 1
    return 0


def service_main(service, handle):
    """Command line shared by the three services: [--expect N] [--run ID]."""
    import argparse
    ap = argparse.ArgumentParser(description="the %s service of the order-flow example" % service)
    ap.add_argument("--expect", type=int, help="exit after handling this many orders")
    ap.add_argument("--run", help="count only orders of this run id towards --expect")
    ap.add_argument("--idle-timeout", type=float, default=30.0)
    args = ap.parse_args()
    sys.exit(run_service(service, handle, args.expect, args.idle_timeout, args.run))
