#!/usr/bin/python3
"""Crash test for Warren's on-disk store: publish, consume, redefine, kill -9,
restart, and check that nothing confirmed was lost and nothing durably
acknowledged came back.

    tests/crash/crash_test.py --broker build/src/warrend [--rounds 100] [--seed N]

One data directory lives through all rounds.  In each round, against the
broker left running by the previous round:
  - publishers (confirm mode, a window of unconfirmed messages; one in
    every few uses transactions instead) send persistent messages, and a
    few transient ones, through durable exchanges (fanout, direct with an
    exchange-to-exchange binding, topic, the default exchange) to durable
    queues; every body carries a unique id and deterministic padding;
  - consumers on some of the queues ack most deliveries, hold a few and
    requeue a few.  An ack counts as SYNCED once a basic.qos round trip on
    its channel came back after it, and as DURABLE once a persistent
    message published on the channel after it was confirmed (the store
    reports tickets durable in order, so that confirm covers the ack);
  - a definitions worker declares, binds, unbinds and deletes durable
    exchanges and queues (recording what was -ok'd), and transient,
    exclusive ones that must not survive;
then the broker is killed with SIGKILL at a random moment (every
--term-every rounds it gets SIGTERM instead and must exit 0; now and then
it is killed again while recovering), restarted, and checked:
  lost            confirmed (queue, id) absent although no ack was ever sent
                  for it: must be 0
  resurrected     present although its ack was DURABLE, or left over from an
                  earlier round (whose messages were all drained): must be 0
  corrupt         body or properties differ from what was published: 0
  unknown/misrouted  an id never published, or in a queue it was not routed
                  to: 0
  transient       a transient message or queue survived: 0
  defs            every -ok'd durable declare exists with its type and
                  arguments, every -ok'd delete is gone: 0 mismatches
  recovered       the broker's "recovered N messages" equals what is found
and reported: duplicated (present twice in one queue), unconfirmed-present,
resurrected-synced (an ack the broker had processed but not yet written
when it died: RabbitMQ does not promise those either), redelivered.
Then every queue is drained (acks made durable by a confirmed marker), and
the next round starts.  After the last round the broker is stopped
cleanly, restarted (the checkpoint path), stopped again and the store
checked with `warrenctl fsck`.

The last lines are "N passed, N failed" and the totals.  Exit status 0
when every round passed.  store_crash.py in the interop cases runs a few
rounds of this through run() below.
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amqpmini as amqp  # noqa: E402
from brokerproc import Broker, BrokerError  # noqa: E402

NET_ERRORS = (amqp.ConnectionLost, amqp.ConnectionClosed)

PAD = random.Random(20261122).randbytes((1 << 18) + 8192)

# The message topology: created once, never changed by the workload.
M_EXCHANGES = {"crash.m.fan": "fanout", "crash.m.src": "direct", "crash.m.topic": "topic"}
M_QUEUES = ["crash.m.q1", "crash.m.q2", "crash.m.q3", "crash.m.q4", "crash.m.marker"]
M_BINDINGS = [("crash.m.fan", "crash.m.q1", "queue", ""),
              ("crash.m.fan", "crash.m.q2", "queue", ""),
              ("crash.m.topic", "crash.m.q3", "queue", "a.#"),
              ("crash.m.src", "crash.m.fan", "exchange", "k")]
ROUTES = [("crash.m.fan", "", ("crash.m.q1", "crash.m.q2")),
          ("crash.m.src", "k", ("crash.m.q1", "crash.m.q2")),
          ("crash.m.topic", "a.b.c", ("crash.m.q3",)),
          ("", "crash.m.q4", ("crash.m.q4",)),
          ("crash.m.topic", "z.nowhere", ())]
CONSUMED = ["crash.m.q1", "crash.m.q3", "crash.m.q4"]  # q2 and marker only fill up
MARKER_Q = "crash.m.marker"

MUST_BE_ZERO = ("lost", "resurrected", "corrupt", "unknown", "misrouted", "transient",
                "defs_missing", "defs_resurrected", "defs_mismatch", "defs_unknown",
                "transient_defs", "recovered_mismatch", "errors")
REPORTED = ("duplicated", "unconfirmed_present", "resurrected_synced", "redelivered")


def make_body(mid, size):
    head = ("%s|%d|" % (mid, size)).encode()
    off = zlib.crc32(head) % 8192
    return head + PAD[off:off + size]


def body_id(body):
    """(id, intact) of a body made by make_body; (None, False) if unreadable."""
    try:
        mid, size, _ = body.split(b"|", 2)
        mid = mid.decode()
        return mid, body == make_body(mid, int(size))
    except (ValueError, UnicodeDecodeError):
        return None, False


def id_round(mid):
    try:
        return int(mid.split(".", 1)[0])
    except ValueError:
        return -1


class Ledger:
    """What one worker did; merged after the round."""

    def __init__(self):
        self.published = {}       # id -> (queues, persistent)
        self.confirmed = set()
        self.nacked = set()
        self.ack_sent = set()     # (queue, id)
        self.ack_synced = set()
        self.ack_durable = set()
        self.delivered = set()

    def merge(self, o):
        self.published.update(o.published)
        for k in ("confirmed", "nacked", "ack_sent", "ack_synced", "ack_durable", "delivered"):
            getattr(self, k).update(getattr(o, k))


class Defs:
    """Durable definitions as the broker -ok'd them: state yes, no or unknown."""

    def __init__(self):
        self.exchanges = {}   # name -> [state, type]
        self.queues = {}      # name -> [state, arguments]
        self.bindings = {}    # (source, destination, kind, key) -> state
        self.transient = set()  # names that must be gone after a restart

    def yes(self, table):
        return [k for k, v in table.items() if (v[0] if isinstance(v, list) else v) == "yes"]

    def bindings_of(self, name, as_queue):
        out = []
        for (s, d, kind, key), st in self.bindings.items():
            if st == "no":
                continue
            if as_queue and kind == "queue" and d == name:
                out.append((s, d, kind, key))
            if not as_queue and (s == name or (kind == "exchange" and d == name)):
                out.append((s, d, kind, key))
        return out


class Round:
    def __init__(self, test, number, rng):
        self.t = test
        self.n = number
        self.rng = rng
        self.killing = threading.Event()
        self.errors = []
        self.lock = threading.Lock()
        self.ledgers = []

    def error(self, what):
        with self.lock:
            self.errors.append(what)

    def worker(self, name, fn, *a):
        ledger = Ledger()
        self.ledgers.append(ledger)

        def run():
            try:
                fn(ledger, *a)
            except NET_ERRORS as e:
                if not self.killing.is_set():
                    self.error("%s: connection failed before the kill: %s" % (name, e))
            except amqp.ChannelClosed as e:
                if not self.killing.is_set():
                    self.error("%s: %s" % (name, e))
            except Exception:
                self.error("%s: %s" % (name, traceback.format_exc()))

        th = threading.Thread(target=run, name=name, daemon=True)
        th.start()
        return th

    def connect(self, name):
        return amqp.Client("127.0.0.1", self.t.broker.port, name=name, timeout=60)

    # ---- workers -----------------------------------------------------------

    def publisher(self, ledger, idx, rng):
        c = self.connect("pub%d" % idx)
        c.channel_open(1)
        use_tx = (self.n + idx) % 4 == 3
        if use_tx:
            c.tx_select(1)
        else:
            c.confirm_select(1)
        pending = {}
        lowest = [1]

        def on_confirm(ch, tag, multiple, ack):
            tags = range(lowest[0], tag + 1) if multiple else (tag,)
            for t in tags:
                mid = pending.pop(t, None)
                if mid is None:
                    continue
                (ledger.confirmed if ack else ledger.nacked).add(mid)
            if multiple:
                lowest[0] = max(lowest[0], tag + 1)

        c.on_confirm = on_confirm
        seq = 0
        n = 0

        def one():
            nonlocal n
            n += 1
            persistent = rng.random() >= 0.04
            mid = "%d.p%d.%s%d" % (self.n, idx, "" if persistent else "t", n)
            x, rk, queues = rng.choice(ROUTES)
            r = rng.random()
            size = (rng.randint(0, 2000) if r < 0.8 else rng.randint(2000, 20000) if r < 0.99
                    else rng.randint(100000, 200000))
            ledger.published[mid] = (queues, persistent)
            c.publish(1, x, rk, make_body(mid, size),
                      amqp.props(delivery_mode=2 if persistent else 1, message_id=mid))
            return mid

        window = self.t.args.window
        while not self.killing.is_set():
            if use_tx:
                batch = [one() for _ in range(rng.randint(1, 40))]
                c.tx_commit(1)
                ledger.confirmed.update(batch)
                continue
            while len(pending) < window:
                seq += 1
                pending[seq] = one()
                if seq % 64 == 0:
                    c.flush()
            c.flush()
            c.poll(0.2)

    def consumer(self, ledger, queue, idx, rng):
        c = self.connect("cons%d" % idx)
        c.channel_open(1)
        c.confirm_select(1)
        prefetch = rng.choice([50, 300, 1000])
        c.basic_qos(1, prefetch)
        outstanding = {}   # tag -> id, delivered and not yet acked or nacked
        to_ack = []        # tags decided for acking
        markers = {}       # publish seq -> (marker id, acks it proves)
        lowest = [1]
        since_proof = []

        def on_deliver(ch, tag, redelivered, exchange, rk, props, body):
            mid, _ = body_id(body)
            if mid is None:
                mid = "?"
            ledger.delivered.add((queue, mid))
            outstanding[tag] = mid
            r = rng.random()
            if r < 0.02:
                return  # held: never acked, must come back after the crash
            if r < 0.04:
                c.nack(1, tag, requeue=True)
                del outstanding[tag]
                return
            to_ack.append(tag)

        def on_confirm(ch, tag, multiple, ack):
            tags = range(lowest[0], tag + 1) if multiple else (tag,)
            for t in tags:
                m = markers.pop(t, None)
                if m is None:
                    continue
                if ack:
                    ledger.confirmed.add(m[0])
                    ledger.ack_durable.update(m[1])
                else:
                    ledger.nacked.add(m[0])
            if multiple:
                lowest[0] = max(lowest[0], tag + 1)

        c.on_deliver = on_deliver
        c.on_confirm = on_confirm
        c.basic_consume(1, queue)
        seq = 0
        nmark = 0
        last_proof = time.monotonic()
        threshold = rng.randint(1, 40)
        while not self.killing.is_set():
            c.poll(0.05)
            if len(to_ack) >= threshold or (to_ack and rng.random() < 0.3):
                threshold = rng.randint(1, 40)
                acked = sorted(to_ack)
                to_ack.clear()
                top = acked[-1]
                below = [t for t in outstanding if t <= top]
                if len(below) == len(acked) and rng.random() < 0.7:
                    c.ack(1, top, multiple=True)
                else:
                    for t in acked:
                        c.ack(1, t)
                for t in acked:
                    key = (queue, outstanding.pop(t))
                    ledger.ack_sent.add(key)
                    since_proof.append(key)
            c.flush()
            if since_proof and time.monotonic() - last_proof > rng.uniform(0.02, 0.3):
                last_proof = time.monotonic()
                proved = since_proof[:]
                since_proof.clear()
                c.basic_qos(1, prefetch)  # round trip: the acks were processed
                ledger.ack_synced.update(proved)
                nmark += 1
                mid = "%d.c%d.m%d" % (self.n, idx, nmark)
                ledger.published[mid] = ((MARKER_Q,), True)
                seq += 1
                markers[seq] = (mid, proved)
                c.publish(1, "", MARKER_Q, make_body(mid, rng.randint(0, 64)),
                          amqp.props(delivery_mode=2, message_id=mid))
                c.flush()

    def definer(self, ledger, rng):
        d = self.t.defs
        c = self.connect("defs")
        ch = 1
        c.channel_open(ch)
        c.confirm_select(ch)
        # A few persistent messages go to the durable queues made here, so
        # that a deleted queue's messages turning up anywhere is caught.
        pending = {}
        state = {"seq": 0, "lowest": 1, "n": 0}

        def on_confirm(chan, tag, multiple, ack):
            if chan != ch:
                return
            tags = range(state["lowest"], tag + 1) if multiple else (tag,)
            for t in tags:
                mid = pending.pop(t, None)
                if mid is not None:
                    (ledger.confirmed if ack else ledger.nacked).add(mid)
            if multiple:
                state["lowest"] = max(state["lowest"], tag + 1)

        def fill(q):
            if "x-max-length" in d.queues[q][1]:
                return  # it would drop the oldest: they could not be counted
            for _ in range(rng.randint(1, 3)):
                state["n"] += 1
                mid = "%d.d.%d" % (self.n, state["n"])
                ledger.published[mid] = ((q,), True)
                state["seq"] += 1
                pending[state["seq"]] = mid
                c.publish(ch, "", q, make_body(mid, rng.randint(0, 300)),
                          amqp.props(delivery_mode=2, message_id=mid))
            c.flush()

        c.on_confirm = on_confirm
        n = 0
        while not self.killing.is_set():
            time.sleep(rng.uniform(0, 0.02))
            n += 1
            xs, qs = d.yes(d.exchanges), d.yes(d.queues)
            xs = [x for x in xs if x.startswith("crash.d.")]
            qs = [q for q in qs if q.startswith("crash.d.")]
            bs = [b for b, st in d.bindings.items() if st == "yes" and b[0].startswith("crash.d.")]
            r = rng.random()
            try:
                if r < 0.15 or (r < 0.3 and len(xs) > 25):
                    if r < 0.15 and len(xs) < 25:
                        name = "crash.d.x.%d.%d" % (self.n, n)
                        t = rng.choice(["direct", "fanout", "topic", "headers"])
                        d.exchanges[name] = ["unknown", t]
                        c.exchange_declare(ch, name, t, durable=True)
                        d.exchanges[name][0] = "yes"
                    elif xs:
                        self.delete_exchange(c, ch, rng.choice(xs))
                elif r < 0.3:
                    if len(qs) < 25:
                        name = "crash.d.q.%d.%d" % (self.n, n)
                        args = rng.choice([{}, {"x-max-length": rng.randint(1, 10 ** 6)},
                                           {"x-message-ttl": 3600000, "x-max-length": 5}])
                        d.queues[name] = ["unknown", args]
                        c.queue_declare(ch, name, durable=True, arguments=args)
                        d.queues[name][0] = "yes"
                        fill(name)
                    elif qs:
                        self.delete_queue(c, ch, rng.choice(qs))
                elif r < 0.5 and xs and qs:
                    b = (rng.choice(xs), rng.choice(qs), "queue", "k%d" % rng.randint(0, 5))
                    if d.bindings.get(b) != "yes":
                        d.bindings[b] = "unknown"
                        c.queue_bind(ch, b[1], b[0], b[3])
                        d.bindings[b] = "yes"
                elif r < 0.58 and len(xs) >= 2:
                    s, dst = rng.sample(xs, 2)
                    b = (s, dst, "exchange", "e%d" % rng.randint(0, 3))
                    if d.bindings.get(b) != "yes":
                        d.bindings[b] = "unknown"
                        c.exchange_bind(ch, dst, s, b[3])
                        d.bindings[b] = "yes"
                elif r < 0.68 and bs:
                    b = rng.choice(bs)
                    d.bindings[b] = "unknown"
                    if b[2] == "queue":
                        c.queue_unbind(ch, b[1], b[0], b[3])
                    else:
                        c.exchange_unbind(ch, b[1], b[0], b[3])
                    d.bindings[b] = "no"
                elif r < 0.78 and qs:
                    self.delete_queue(c, ch, rng.choice(qs))
                elif r < 0.86 and xs:
                    self.delete_exchange(c, ch, rng.choice(xs))
                elif r < 0.93:
                    # transient things: a durable exchange's non-durable cousin,
                    # an exclusive queue, a non-durable queue
                    kind = rng.randint(0, 2)
                    name = "crash.d.t.%d.%d" % (self.n, n)
                    d.transient.add(name)
                    if kind == 0:
                        c.exchange_declare(ch, name, "fanout", durable=False)
                    else:
                        c.queue_declare(ch, name, durable=kind == 1, exclusive=kind == 1)
                        if xs:
                            c.queue_bind(ch, name, rng.choice(xs), "t")
                else:
                    # re-declaring what exists changes nothing
                    if xs:
                        x = rng.choice(xs)
                        c.exchange_declare(ch, x, d.exchanges[x][1], durable=True)
                    if qs:
                        q = rng.choice(qs)
                        c.queue_declare(ch, q, durable=True, arguments=d.queues[q][1])
                        fill(q)
            except amqp.ChannelClosed as e:
                if self.killing.is_set():
                    raise
                self.error("defs: %s" % e)
                ch += 1
                c.channel_open(ch)
                c.confirm_select(ch)
                pending.clear()
                state.update(seq=0, lowest=1)

    def delete_queue(self, c, ch, q):
        d = self.t.defs
        bs = d.bindings_of(q, True)
        d.queues[q][0] = "unknown"
        for b in bs:
            d.bindings[b] = "unknown"
        c.queue_delete(ch, q)
        d.queues[q][0] = "no"
        for b in bs:
            d.bindings[b] = "no"

    def delete_exchange(self, c, ch, x):
        d = self.t.defs
        bs = d.bindings_of(x, False)
        d.exchanges[x][0] = "unknown"
        for b in bs:
            d.bindings[b] = "unknown"
        c.exchange_delete(ch, x)
        d.exchanges[x][0] = "no"
        for b in bs:
            d.bindings[b] = "no"

    # ---- the round ---------------------------------------------------------

    def run(self):
        t, args, rng = self.t, self.t.args, self.rng
        res = dict.fromkeys(MUST_BE_ZERO + REPORTED, 0)
        res["round"] = self.n
        carry = t.carry
        t.carry = Ledger()
        self.ledgers.append(carry)
        threads = []
        for i in range(args.publishers):
            threads.append(self.worker("pub%d" % i, self.publisher, i,
                                       random.Random(rng.random())))
        for i, q in enumerate(CONSUMED):
            threads.append(self.worker("cons%d" % i, self.consumer, q, i,
                                       random.Random(rng.random())))
        threads.append(self.worker("defs", self.definer, random.Random(rng.random())))

        r = rng.random()
        after = rng.uniform(0, 0.05) if r < 0.1 else rng.uniform(0.05, args.max_run)
        time.sleep(after)
        clean = args.term_every > 0 and self.n % args.term_every == 0
        self.killing.set()
        log = "broker-r%03d.log" % self.n
        res["how"] = "SIGTERM" if clean else "kill -9"
        res["after"] = after
        if clean:
            try:
                t.broker.stop()
            except BrokerError as e:
                self.error("clean stop: %s" % e)
        else:
            t.broker.kill9()
        # the life that just ended (a sanitizer aborts the broker at once)
        hit = t.broker.sanitizer_report()
        if hit:
            self.error("sanitizer: %s" % hit)
        for th in threads:
            th.join(60)
            if th.is_alive():
                self.error("worker %s did not stop after the broker died" % th.name)
        ledger = Ledger()
        for lg in self.ledgers:
            ledger.merge(lg)

        if not clean and rng.random() < args.double_crash:
            # die again during recovery (or just after it)
            t.broker.start(log, wait=False)
            time.sleep(rng.uniform(0, 0.15))
            t.broker.kill9()
            res["how"] += " x2"
        t.broker.start(log)
        res["restart"] = t.broker.listen_seconds
        res["recovered_line"] = t.broker.recovered
        if t.broker.recovered is None:
            self.error("no 'recovered ...' line in the log")

        t.check_defs(res)
        found = t.drain(res, self)
        self.check_messages(res, ledger, found)
        rec = t.broker.recovered
        total = sum(len(v) for v in found.values())
        if rec is not None and rec.messages != total:
            res["recovered_mismatch"] = 1
            self.error("log says %d messages recovered, queues held %d" % (rec.messages, total))
        t.after_verify(self)
        res["published"] = len(ledger.published)
        res["confirmed"] = len(ledger.confirmed)
        res["acked"] = len(ledger.ack_sent)
        res["acked_durable"] = len(ledger.ack_durable)
        res["present"] = total
        res["errors"] = len(self.errors)
        res["error_texts"] = self.errors
        return res

    def check_messages(self, res, ledger, found):
        present = {}
        for q, msgs in found.items():
            for redelivered, props, body in msgs:
                mid, intact = body_id(body)
                if mid is None:
                    res["corrupt"] += 1
                    self.error("unreadable body in %s: %r" % (q, body[:40]))
                    continue
                if not intact or props.get("message_id") != mid:
                    res["corrupt"] += 1
                    self.error("message %s in %s: body or properties damaged" % (mid, q))
                present[(q, mid)] = present.get((q, mid), 0) + 1
                if redelivered:
                    res["redelivered"] += 1
        for (q, mid), count in present.items():
            res["duplicated"] += count - 1
            info = ledger.published.get(mid)
            if info is None:
                if 0 <= id_round(mid) < self.n:
                    res["resurrected"] += 1
                    self.error("message %s from an earlier round (drained) is back in %s"
                               % (mid, q))
                else:
                    res["unknown"] += 1
                    self.error("message %s in %s was never published" % (mid, q))
                continue
            queues, persistent = info
            if q not in queues:
                res["misrouted"] += 1
                self.error("message %s found in %s, but it was published to %s"
                           % (mid, q, ", ".join(queues) or "no queue"))
            if not persistent:
                res["transient"] += 1
                self.error("transient message %s survived in %s" % (mid, q))
            if (q, mid) in ledger.ack_durable:
                res["resurrected"] += 1
                self.error("message %s in %s was acked and the ack confirmed durable" % (mid, q))
            elif (q, mid) in ledger.ack_synced:
                res["resurrected_synced"] += 1
            elif mid not in ledger.confirmed:
                res["unconfirmed_present"] += 1
        lost = []
        for mid in ledger.confirmed:
            queues, persistent = ledger.published[mid]
            if not persistent:
                continue
            for q in queues:
                if q not in found:
                    continue  # a queue deleted since (or its delete was in flight)
                if (q, mid) not in present and (q, mid) not in ledger.ack_sent:
                    lost.append((q, mid))
        res["lost"] = len(lost)
        for q, mid in sorted(lost)[:20]:
            self.error("LOST: confirmed message %s missing from %s" % (mid, q))


class CrashTest:
    def __init__(self, args, out=sys.stdout):
        self.args = args
        self.out = out
        self.rng = random.Random(args.seed)
        self.defs = Defs()
        self.carry = Ledger()
        self.broker = None

    def say(self, text):
        self.out.write(text + "\n")
        self.out.flush()

    def client(self):
        return amqp.Client("127.0.0.1", self.broker.port, name="verify", timeout=60)

    def setup(self):
        d = self.defs
        c = self.client()
        c.channel_open(1)
        for x, typ in M_EXCHANGES.items():
            c.exchange_declare(1, x, typ, durable=True)
            d.exchanges[x] = ["yes", typ]
        for q in M_QUEUES:
            c.queue_declare(1, q, durable=True)
            d.queues[q] = ["yes", {}]
        for s, dst, kind, key in M_BINDINGS:
            if kind == "queue":
                c.queue_bind(1, dst, s, key)
            else:
                c.exchange_bind(1, dst, s, key)
            d.bindings[(s, dst, kind, key)] = "yes"
        c.close()
        self.transient_topology()

    def transient_topology(self):
        """A non-durable queue on the fanout, for every broker life."""
        c = self.client()
        c.channel_open(1)
        c.queue_declare(1, "crash.m.tq", durable=False)
        c.queue_bind(1, "crash.m.tq", "crash.m.fan", "")
        self.defs.transient.add("crash.m.tq")
        c.close()

    def check_defs(self, res):
        d = self.defs
        xs = {e["name"]: e
              for e in self.broker.ctl_json("list_exchanges", "name", "type", "durable")}
        qs = {e["name"]: e for e in self.broker.ctl_json("list_queues", "name", "durable",
                                                          "arguments")}
        bs = set()
        for b in self.broker.ctl_json("list_bindings", "source_name", "destination_name",
                                      "destination_kind", "routing_key"):
            if b["source_name"] == "":
                continue  # the default exchange's implicit bindings
            bs.add((b["source_name"], b["destination_name"], b["destination_kind"],
                    b["routing_key"]))
        errs = []

        def compare(kind, model, live, same):
            for name, v in model.items():
                st = v[0]
                if st == "yes":
                    if name not in live:
                        res["defs_missing"] += 1
                        errs.append("%s %s was declared (-ok) but is gone" % (kind, name))
                    elif not same(v, live[name]):
                        res["defs_mismatch"] += 1
                        errs.append("%s %s came back different: %r, declared %r"
                                    % (kind, name, live[name], v[1]))
                elif st == "no":
                    if name in live:
                        res["defs_resurrected"] += 1
                        errs.append("%s %s was deleted (-ok) but is back" % (kind, name))
                else:
                    v[0] = "yes" if name in live else "no"
            for name in live:
                if name.startswith("crash.") and name not in model and name not in d.transient:
                    res["defs_unknown"] += 1
                    errs.append("%s %s exists but was never declared" % (kind, name))

        compare("exchange", d.exchanges, xs,
                lambda v, e: e["type"] == v[1] and e["durable"] is True)
        compare("queue", d.queues, qs,
                lambda v, e: e["durable"] is True and e.get("arguments", {}) == v[1])
        for name in d.transient:
            if name in xs or name in qs:
                res["transient_defs"] += 1
                errs.append("transient/exclusive %s survived the restart" % name)
        for b, st in list(d.bindings.items()):
            if st == "yes" and b not in bs:
                res["defs_missing"] += 1
                errs.append("binding %s was -ok'd but is gone" % (b,))
            elif st == "no" and b in bs:
                res["defs_resurrected"] += 1
                errs.append("binding %s was removed (-ok) but is back" % (b,))
            elif st == "unknown":
                d.bindings[b] = "yes" if b in bs else "no"
        for b in bs:
            if b[0].startswith("crash.") and b not in d.bindings:
                if b[1] in d.transient:
                    continue
                res["defs_unknown"] += 1
                errs.append("binding %s exists but was never made" % (b,))
        d.transient.clear()
        # forget what is gone for good, so the model stays small
        for table in (d.exchanges, d.queues):
            for k in [k for k, v in table.items() if v[0] == "no"]:
                del table[k]
        for k in [k for k, v in d.bindings.items() if v == "no"]:
            del d.bindings[k]
        res["defs_errors"] = errs
        res["defs_counts"] = (len(d.yes(d.exchanges)), len(d.yes(d.queues)),
                              sum(1 for v in d.bindings.values() if v == "yes"))

    def drain(self, res, rnd):
        """Every message of every message queue: queue -> [(redelivered, props, body)]."""
        found = {}
        c = self.client()
        c.channel_open(1)
        c.confirm_select(1)
        got = []
        c.on_deliver = lambda ch, tag, red, x, rk, p, body: got.append(
            (tag, red, amqp.decode_props(p), body))
        queues = M_QUEUES + sorted(q for q, v in self.defs.queues.items()
                                   if v[0] == "yes" and q.startswith("crash.d."))
        for q in queues:
            try:
                _, count, consumers = c.queue_declare(1, q, passive=True)
            except amqp.ChannelClosed as e:
                rnd.error("message queue %s: %s" % (q, e))
                c.channel_open(1)
                c.confirm_select(1)
                continue
            del got[:]
            ctag = c.basic_consume(1, q)
            deadline = time.monotonic() + 120
            while len(got) < count and time.monotonic() < deadline:
                c.poll(0.5)
            c.basic_cancel(1, ctag)
            c.poll(0.2)
            if len(got) != count:
                rnd.error("%s: declare said %d messages, %d delivered" % (q, count, len(got)))
            if got:
                c.ack(1, max(g[0] for g in got), multiple=True)
            found[q] = [(red, p, body) for _, red, p, body in got]
            _, left, _ = c.queue_declare(1, q, passive=True)
            if left:
                rnd.error("%s: %d messages left after draining" % (q, left))
        # a confirmed persistent publish after the acks proves them durable
        mid = "%d.v" % rnd.n
        acks = []
        c.on_confirm = lambda ch, tag, multiple, ack: acks.append(ack)
        c.publish(1, "", MARKER_Q, make_body(mid, 10), amqp.props(delivery_mode=2, message_id=mid))
        c.flush()
        deadline = time.monotonic() + 60
        while not acks and time.monotonic() < deadline:
            c.poll(0.5)
        if acks != [True]:
            rnd.error("the drain's marker was not confirmed: %r" % acks)
        self.carry.published[mid] = ((MARKER_Q,), True)
        self.carry.confirmed.add(mid)
        c.close()
        return found

    def after_verify(self, rnd):
        self.transient_topology()

    def finish(self):
        """Clean stop, checkpoint restart, clean stop, fsck.  [] or problems."""
        problems = []
        b = self.broker
        try:
            b.stop()
            hit = b.sanitizer_report()
            if hit:
                problems.append("sanitizer: %s" % hit)
            b.start("broker-final.log")
            rec = b.recovered
            expect = len(self.carry.confirmed)
            if rec is None or not rec.checkpoint or rec.messages != expect:
                problems.append("restart after a clean stop: %s (expected %d messages from "
                                "the checkpoint)" % (rec, expect))
            b.stop()
            hit = b.sanitizer_report()
            if hit:
                problems.append("sanitizer: %s" % hit)
            rc, out, err = b.ctl_run("fsck", "--data-dir", b.data_dir, check=False, online=False)
            if rc != 0:
                problems.append("fsck after the last round: status %d\n%s%s" % (rc, out, err))
        except BrokerError as e:
            problems.append(str(e))
        return problems


def fmt(res):
    rec = res.get("recovered_line")
    s = ("round %3d: %-10s after %5.2fs: pub %6d conf %6d acked %6d (durable %6d) present %6d | "
         "lost %d resurrected %d corrupt %d | dup %d unconf %d res-synced %d redeliv %d | "
         "defs x/q/b %d/%d/%d bad %d | restart %.2fs" % (
             res["round"], res["how"], res["after"], res["published"], res["confirmed"],
             res["acked"], res["acked_durable"], res["present"], res["lost"],
             res["resurrected"], res["corrupt"], res["duplicated"],
             res["unconfirmed_present"], res["resurrected_synced"], res["redelivered"],
             res["defs_counts"][0], res["defs_counts"][1], res["defs_counts"][2],
             sum(res[k] for k in ("defs_missing", "defs_resurrected", "defs_mismatch",
                                  "defs_unknown", "transient_defs")),
             res["restart"] or 0))
    if rec:
        s += " (recovered %d msgs in %.3fs%s)" % (rec.messages, rec.seconds,
                                                   ", checkpoint" if rec.checkpoint else "")
    return s


def run(args, out=sys.stdout):
    """Run the crash test; returns (passed, failed, totals)."""
    work = args.dir or tempfile.mkdtemp(prefix="warren-crash-")
    log_dir = args.log_dir or work
    os.makedirs(work, exist_ok=True)
    test = CrashTest(args, out)
    test.broker = Broker(args.broker, os.path.join(work, "data"), log_dir, ctl=args.ctl)
    totals = dict.fromkeys(MUST_BE_ZERO + REPORTED, 0)
    passed = failed = 0
    test.say("crash test: %d rounds, seed %d, data dir %s" % (args.rounds, args.seed,
                                                             test.broker.data_dir))
    ok = False
    try:
        test.broker.start("broker-r000.log")
        test.setup()
        for n in range(1, args.rounds + 1):
            rnd = Round(test, n, random.Random(test.rng.random()))
            try:
                res = rnd.run()
            except NET_ERRORS + (amqp.ChannelClosed,) as e:
                raise BrokerError("round %d: the restarted broker failed the checks' "
                                  "connection: %s; log:\n%s" % (n, e, test.broker.log_tail()))
            for k in totals:
                totals[k] += res[k]
            bad = [k for k in MUST_BE_ZERO if res[k]]
            bad += ["defs: " + e for e in res["defs_errors"]]
            test.say(fmt(res) + (" FAIL" if bad else " ok"))
            if bad:
                failed += 1
                for e in (res["error_texts"][:20] + res["defs_errors"][:20]):
                    test.say("    " + e.replace("\n", "\n    "))
            else:
                passed += 1
        problems = test.finish()
        for p in problems:
            test.say("final: " + p)
        if problems:
            failed += 1
            totals["errors"] += len(problems)
        else:
            test.say("final: clean stop, checkpoint restart and fsck ok; data dir %.1f MB"
                     % (test.broker.du_bytes() / 1e6))
        ok = failed == 0
    except BrokerError as e:
        test.say("broker failure: %s" % e)
        failed += 1
        totals["errors"] += 1
    finally:
        test.broker.cleanup()
        if ok and not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.dir:
            test.say("kept %s" % work)
    test.say("%d passed, %d failed" % (passed, failed))
    test.say("totals: " + " ".join("%s=%d" % (k, totals[k]) for k in MUST_BE_ZERO + REPORTED))
    return passed, failed, totals


def parser():
    ap = argparse.ArgumentParser(description="Crash test for Warren's on-disk store.")
    ap.add_argument("--broker", required=True, help="warrend binary")
    ap.add_argument("--ctl", help="warrenctl binary (default: next to warrend)")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--window", type=int, default=256, help="unconfirmed messages per publisher")
    ap.add_argument("--max-run", type=float, default=3.0,
                    help="longest time before the kill, seconds")
    ap.add_argument("--term-every", type=int, default=10,
                    help="every Nth round stops the broker with SIGTERM (0: never)")
    ap.add_argument("--double-crash", type=float, default=0.1,
                    help="chance of a second kill during recovery")
    ap.add_argument("--dir", help="work directory (kept); default a temporary one")
    ap.add_argument("--log-dir", help="broker logs (default: the work directory)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return ap


def main():
    args = parser().parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    _, failed, _ = run(args)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
