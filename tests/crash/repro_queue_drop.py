#!/usr/bin/python3
"""Reproduction: a durable queue deleted just before a crash hands its
messages to the next durable queue created.

    tests/crash/repro_queue_drop.py --broker build/src/warrend [--attempts 30]

queue.delete-ok is sent once the definitions file no longer lists the queue
(written synchronously), but the store's QDROP record is only queued for the
next group commit.  If the broker dies in between, the restarted broker finds
the queue's messages in the store under a queue id the definitions do not
know, drops them from memory ("N stored messages belong to no durable queue;
dropped") but not from the store, and hands the id out again, since ids
continue from the highest one in the definitions.  The next durable queue
declared gets it, and after the next restart that queue holds the deleted
queue's messages.

Each attempt: queue "a" (the newest, so the highest id) gets 100 persistent
messages; another connection keeps the store thread busy with large
persistent messages to "keep", so that group commits take a while; "a" is
deleted and the broker killed as soon as delete-ok arrives; after a restart
"b" is declared, and after one more (clean) restart "b" should be empty.
Exit status 1, with what "b" holds, when that happens; 0 if no attempt hit
the window.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amqpmini as amqp  # noqa: E402
from brokerproc import Broker  # noqa: E402


def attempt(binary, work):
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    b = Broker(binary, data, work)
    try:
        b.start("repro.log")
        c = amqp.Client("127.0.0.1", b.port)
        c.channel_open(1)
        c.queue_declare(1, "keep", durable=True)
        c.queue_declare(1, "a", durable=True)
        c.confirm_select(1)
        acks = []
        c.on_confirm = lambda ch, tag, multiple, ack: acks.append(tag)
        for i in range(100):
            c.publish(1, "", "a", b"a-%d" % i, amqp.props(delivery_mode=2))
        c.flush()
        while not acks or acks[-1] < 100:
            c.poll(1)
        stop = threading.Event()

        def load():
            try:
                lc = amqp.Client("127.0.0.1", b.port)
                lc.channel_open(1)
                body = os.urandom(256 * 1024)
                while not stop.is_set():
                    for _ in range(8):
                        lc.publish(1, "", "keep", body, amqp.props(delivery_mode=2))
                    lc.flush()
            except (amqp.ConnectionLost, amqp.ConnectionClosed):
                pass

        th = threading.Thread(target=load, daemon=True)
        th.start()
        time.sleep(0.3)
        c.queue_delete(1, "a")
        b.kill9()
        stop.set()
        th.join()

        b.start("repro.log")
        orphans = "belong to no durable queue" in b.log_text()
        c = amqp.Client("127.0.0.1", b.port)
        c.channel_open(1)
        c.queue_delete(1, "keep")
        c.queue_declare(1, "b", durable=True)
        c.close()
        b.stop()
        b.start("repro.log")
        c = amqp.Client("127.0.0.1", b.port)
        c.channel_open(1)
        _, count, _ = c.queue_declare(1, "b", passive=True)
        first = c.basic_get(1, "b", no_ack=False)
        c.close()
        b.stop()
        return orphans, count, first[5] if first else None
    finally:
        b.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--attempts", type=int, default=30)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="warren-repro-")
    try:
        for i in range(1, args.attempts + 1):
            orphans, count, first = attempt(args.broker, work)
            print("attempt %d: %s; new queue 'b' holds %d messages%s"
                  % (i, "deleted queue's messages orphaned" if orphans
                     else "the QDROP made it to disk", count,
                     " (first: %r)" % first if first else ""))
            if count:
                print("REPRODUCED: the deleted queue 'a''s messages came back in 'b'")
                return 1
        print("not reproduced in %d attempts" % args.attempts)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
