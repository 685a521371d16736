#!/usr/bin/env python3
"""The order service: places orders and announces each as an OrderPlaced
event (JSON) on the `orders` topic exchange with routing key `order.placed`.

It knows nothing about who listens.  Publishes are persistent, mandatory and
confirmed: when basic_publish returns, the broker has taken responsibility
for the event, and an event no queue would receive raises instead of
vanishing."""

import argparse
import datetime
import json
import random
import sys

import pika

from common import EXCHANGE, ROUTING_KEY, connect, declare_exchange, say

CATALOGUE = {"widget": "9.99", "gadget": "24.50", "gizmo": "3.75", "doohickey": "120.00"}
CUSTOMERS = [("Alice", "alice@example.com"), ("Bob", "bob@example.com"),
             ("Chandra", "chandra@example.com"), ("Dmitri", "dmitri@example.com")]


def make_order(run_id, n, rng):
    name, email = CUSTOMERS[n % len(CUSTOMERS)]
    items = []
    for sku in rng.sample(sorted(CATALOGUE), rng.randint(1, 3)):
        items.append({"sku": sku, "qty": rng.randint(1, 4), "price": CATALOGUE[sku]})
    cents = sum(int(i["price"].replace(".", "")) * i["qty"] for i in items)
    return {
        "type": "OrderPlaced",
        "run": run_id,
        "order_id": "%s-%04d" % (run_id, n),
        "customer": {"name": name, "email": email},
        "items": items,
        "total": "%d.%02d" % divmod(cents, 100),
        "currency": "EUR",
        "placed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def main():
    ap = argparse.ArgumentParser(description="publish OrderPlaced events")
    ap.add_argument("--orders", type=int, default=5, help="how many orders to place")
    ap.add_argument("--run", default="ord", help="prefix of the order ids")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    conn = connect()
    ch = conn.channel()
    declare_exchange(ch)
    ch.confirm_delivery()
    for n in range(1, args.orders + 1):
        order = make_order(args.run, n, rng)
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=order["order_id"], type="OrderPlaced",
                                     app_id="order-service")
        try:
            ch.basic_publish(EXCHANGE, ROUTING_KEY, json.dumps(order).encode(), props,
                             mandatory=True)
        except pika.exceptions.UnroutableError:
            say("[orders]     order %s: no service is listening; not placed" % order["order_id"],
                sys.stderr)
            conn.close()
            return 1
        say("[orders]     order %s placed by %s: %s EUR" % (
            order["order_id"], order["customer"]["name"], order["total"]))
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
