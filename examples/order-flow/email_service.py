#!/usr/bin/env python3
"""The email service: tells the customer their order was received.
(It prints the email instead of sending it.)"""

from common import service_main


def handle(order):
    c = order["customer"]
    n = sum(item["qty"] for item in order["items"])
    return "confirmation email to %s <%s> (%d item%s, %s %s)" % (
        c["name"], c["email"], n, "" if n == 1 else "s", order["total"], order["currency"])


if __name__ == "__main__":
    service_main("email", handle)
