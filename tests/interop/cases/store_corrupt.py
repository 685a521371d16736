# broker: none
# timeout: 180
"""Damaged store files: the broker still starts and recovers every intact
message, and `warrenctl fsck` / `dump` show and repair the damage.

Three segments are written (the store starts a new one at every start):
A and B by brokers stopped cleanly, C by one killed with SIGKILL.  Then,
with the broker stopped, bytes in the middle of A are flipped and the tail
of C (the last segment) is cut off, as a torn write would leave it:
  - fsck finds the damaged region and the torn tail and exits 3, dump
    prints the queue's surviving messages, and both refuse to run while a
    broker holds the directory;
  - a broker started on a copy of the damaged directory logs the damage
    counts and recovers exactly the messages dump listed: all of B, all of
    A and C but the few records the damage touched, every body intact and
    in order;
  - fsck --repair rewrites A and truncates C (exit 4), after which fsck is
    clean (exit 0), dump lists the same messages and a broker started on
    the repaired directory reports no damage and recovers the same messages;
  - a segment whose header is damaged is skipped by the broker and set
    aside as *.damaged by the repair.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["WARREN_SRCDIR"], "tests", "crash"))
import amqpmini as amqp  # noqa: E402
from brokerproc import Broker  # noqa: E402
from crash_test import body_id, make_body  # noqa: E402

TMP = os.environ["WARREN_TMP"]
BIN = os.environ["WARREN_BIN"]
CTL = os.path.join(os.path.dirname(BIN), "warrenctl")
# a broker killed with SIGKILL leaves its admin socket behind
SOCKETS = shutil.ignore_patterns("*.sock")
PER_BATCH = 600
SIZE = 1000


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def ctl(*args):
    r = subprocess.run([CTL] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def publish(b, batch):
    """PER_BATCH persistent messages to c.q (every tenth also to c.other)."""
    c = amqp.Client("127.0.0.1", b.port)
    c.channel_open(1)
    c.queue_declare(1, "c.q", durable=True)
    c.queue_declare(1, "c.other", durable=True)
    c.exchange_declare(1, "c.x", "direct", durable=True)
    c.queue_bind(1, "c.q", "c.x", "all")
    c.queue_bind(1, "c.q", "c.x", "both")
    c.queue_bind(1, "c.other", "c.x", "both")
    c.confirm_select(1)
    acked = []
    c.on_confirm = lambda ch, tag, multiple, ack: acked.append((tag, ack))
    for i in range(PER_BATCH):
        mid = "%s.%d" % (batch, i)
        c.publish(1, "c.x", "both" if i % 10 == 0 else "all", make_body(mid, SIZE),
                  amqp.props(delivery_mode=2, message_id=mid))
    c.flush()
    while not acked or acked[-1][0] < PER_BATCH:
        c.poll(5)
    check(all(a for _, a in acked), "a publish was nacked")
    c.close()


def consume_all(b, queue):
    """Bodies' ids in queue order; checks each body."""
    c = amqp.Client("127.0.0.1", b.port)
    c.channel_open(1)
    ids = []
    while True:
        m = c.basic_get(1, queue, no_ack=True)
        if m is None:
            break
        mid, intact = body_id(m[5])
        check(intact, "message %r in %s is damaged" % (mid, queue))
        check(amqp.decode_props(m[4]).get("message_id") == mid, "properties of %s" % mid)
        ids.append(mid)
    c.close()
    return ids


def dumped(data, queue):
    rc, out, err = ctl("dump", "--data-dir", data, queue)
    check(rc == 0, "dump %s: status %d: %s%s" % (queue, rc, out, err))
    ids = re.findall(r"^seq=\d+ msg=\d+ redelivered=no exchange='c.x' routing_key='\w+' "
                     r"props=\d+ body=\d+ '([A-C]\.\d+)\|%d\|" % SIZE, out, re.M)
    m = re.search(r"^queue \d+: (\d+) messages$", out, re.M)
    check(m and int(m.group(1)) == len(ids), "dump output (%d ids):\n%s" % (len(ids), out[-2000:]))
    return ids


def segments(data):
    return sorted(glob.glob(os.path.join(data, "msgs", "*.seg")))


def main():
    data = os.path.join(TMP, "data-corrupt")
    b = Broker(BIN, data, TMP)
    try:
        for batch, how in (("A", "term"), ("B", "term"), ("C", "kill")):
            b.start("corrupt-%s.log" % batch)
            publish(b, batch)
            if how == "term":
                b.stop()
            else:
                # both tools refuse a directory a broker holds
                rc, out, err = ctl("fsck", "--data-dir", data)
                check(rc == 1 and "is running on" in err, "fsck beside a broker: %d %s%s"
                      % (rc, out, err))
                rc, out, err = ctl("dump", "--data-dir", data, "c.q")
                check(rc == 1 and "is running on" in err, "dump beside a broker: %d %s%s"
                      % (rc, out, err))
                b.kill9()
    finally:
        b.cleanup()
    segs = segments(data)
    check(len(segs) == 3, "expected 3 segments, found %r" % segs)
    rc, out, err = ctl("fsck", "--data-dir", data)
    check(rc == 0, "fsck of the intact store: %d\n%s%s" % (rc, out, err))
    every = ["%s.%d" % (x, i) for x in "ABC" for i in range(PER_BATCH)]
    check(dumped(data, "c.q") == every, "dump of the intact store")
    intact = os.path.join(TMP, "data-intact")
    shutil.copytree(data, intact, ignore=SOCKETS)

    # the damage
    with open(segs[0], "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        chunk = f.read(8)
        f.seek(size // 2)
        f.write(bytes(c ^ 0xFF for c in chunk))
    tail_cut = 1500
    with open(segs[2], "r+b") as f:
        f.truncate(os.fstat(f.fileno()).st_size - tail_cut)

    rc, out, err = ctl("fsck", "--data-dir", data)
    check(rc == 3, "fsck of the damaged store should exit 3: %d\n%s%s" % (rc, out, err))
    check(re.search(r"^%s: .*1 damaged region" % os.path.basename(segs[0]), out, re.M),
          "fsck does not report the damaged region:\n" + out)
    check(re.search(r"^%s: .*\d+ bytes of torn tail" % os.path.basename(segs[2]), out, re.M),
          "fsck does not report the torn tail:\n" + out)
    check("status: damaged" in out, out)
    # Each message is a MSG record and one ENQ record per queue (every tenth
    # is in c.other too); the 8 flipped bytes touch one or two records, the
    # cut tail the last few.
    survivors = dumped(data, "c.q")
    other = dumped(data, "c.other")
    in_other = [m for m in every if int(m[2:]) % 10 == 0]
    check(survivors == [m for m in every if m in survivors], "dump order of c.q")
    check(other == [m for m in in_other if m in other], "dump order of c.other")
    lost = sorted(set(every) - set(survivors) | set(in_other) - set(other),
                  key=every.index)
    lost_a = [m for m in lost if m.startswith("A")]
    lost_c = [m for m in lost if m.startswith("C")]
    check(1 <= len(lost_a) <= 2 and 1 <= len(lost_c) <= 3 and len(lost) == len(lost_a) +
          len(lost_c), "damage should cost 1-2 messages of A and 1-3 of C: lost %r" % lost)
    check(lost_c == every[-len(lost_c):], "the torn tail should cost C's last messages: %r"
          % lost_c)
    rc, out, err = ctl("dump", "--data-dir", data, "c.q", "-p", "/nope")
    check(rc == 1 and "no durable queue 'c.q' in vhost '/nope'" in err, "dump -p: " + err)

    # a broker on the damaged store (a copy: the original is repaired below)
    damaged = os.path.join(TMP, "data-damaged")
    shutil.copytree(data, damaged, ignore=SOCKETS)
    b = Broker(BIN, damaged, TMP)
    try:
        b.start("corrupt-damaged.log")
        rec = b.recovered
        check(rec is not None and rec.damaged >= 1 and rec.truncated > 0 and
              rec.messages == len(survivors) + len(other) and not rec.checkpoint,
              "recovery of the damaged store: %s (expected %d messages)"
              % (rec, len(survivors) + len(other)))
        check(consume_all(b, "c.q") == survivors, "c.q after recovery")
        check(consume_all(b, "c.other") == other, "c.other after recovery")
        b.stop()
    finally:
        b.cleanup()

    # repair, then everything is clean
    rc, out, err = ctl("fsck", "--data-dir", data, "--repair")
    check(rc == 4, "fsck --repair should exit 4: %d\n%s%s" % (rc, out, err))
    check("rewritten with its intact records" in out and "truncated to" in out and
          "re-check after the repair: clean" in out, "fsck --repair output:\n" + out)
    rc, out, err = ctl("fsck", "--data-dir", data)
    check(rc == 0 and "status: clean" in out, "fsck after the repair: %d\n%s%s" % (rc, out, err))
    check(dumped(data, "c.q") == survivors, "dump after the repair")
    b = Broker(BIN, data, TMP)
    try:
        b.start("corrupt-repaired.log")
        rec = b.recovered
        check(rec is not None and rec.damaged == 0 and rec.truncated == 0 and
              rec.messages == len(survivors) + len(other),
              "recovery of the repaired store: %s" % rec)
        check(consume_all(b, "c.q") == survivors, "c.q after the repair")
        b.stop()
    finally:
        b.cleanup()
    print("flipped 8 bytes of %s, cut %d bytes off %s: lost %s; recovered %d"
          % (os.path.basename(segs[0]), tail_cut, os.path.basename(segs[2]), lost,
             len(survivors)))

    # a segment with a damaged header: skipped by the broker, set aside by fsck
    seg_b = segments(intact)[1]
    with open(seg_b, "r+b") as f:
        f.write(b"X")
    b = Broker(BIN, intact, TMP)
    try:
        b.start("corrupt-header.log")
        rec = b.recovered
        want = 2 * PER_BATCH + 2 * PER_BATCH // 10  # A and C, in c.q and c.other
        check(rec is not None and rec.damaged >= 1 and rec.messages == want,
              "recovery with B's header damaged: %s (expected %d messages)" % (rec, want))
        check(consume_all(b, "c.q") == [m for m in every if not m.startswith("B")],
              "c.q with B's header damaged")
        b.stop()
    finally:
        b.cleanup()
    rc, out, err = ctl("fsck", "--data-dir", intact)
    check(rc == 3 and re.search(r"^%s: bad or foreign header" % os.path.basename(seg_b), out,
                                re.M), "fsck with a bad header: %d\n%s%s" % (rc, out, err))
    rc, out, err = ctl("fsck", "--data-dir", intact, "--repair")
    check(rc == 4 and os.path.exists(seg_b + ".damaged") and not os.path.exists(seg_b),
          "fsck --repair with a bad header: %d\n%s%s" % (rc, out, err))
    rc, out, err = ctl("fsck", "--data-dir", intact)
    check(rc == 0, "fsck after setting the segment aside: %d\n%s%s" % (rc, out, err))


main()
