#!/usr/bin/env python3
"""The inventory service: reserves stock for each order line.  Stock lives
in memory here; a real one would keep it in a database."""

from common import service_main

stock = {"widget": 1000, "gadget": 500, "gizmo": 250, "doohickey": 100}


def handle(order):
    parts = []
    for item in order["items"]:
        sku, qty = item["sku"], item["qty"]
        left = stock.get(sku, 0)
        if left < qty:
            parts.append("%s backordered (%d wanted, %d left)" % (sku, qty, left))
            continue
        stock[sku] = left - qty
        parts.append("%d x %s (%d left)" % (qty, sku, stock[sku]))
    return "reserved " + ", ".join(parts)


if __name__ == "__main__":
    service_main("inventory", handle)
