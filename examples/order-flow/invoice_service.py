#!/usr/bin/env python3
"""The invoice service: turns an order into an invoice with line totals.
Amounts are strings of decimal currency units, summed with Decimal so no
cent is lost to binary floating point."""

from decimal import Decimal

from common import service_main


def handle(order):
    lines = [Decimal(item["price"]) * item["qty"] for item in order["items"]]
    total = sum(lines, Decimal("0"))
    if total != Decimal(order["total"]):
        return "invoice NOT issued: lines sum to %s but the order says %s" % (total, order["total"])
    return "invoice INV-%s for %s: %d line%s, %s %s" % (
        order["order_id"], order["customer"]["name"], len(lines),
        "" if len(lines) == 1 else "s", total, order["currency"])


if __name__ == "__main__":
    service_main("invoice", handle)
