#!/usr/bin/python3
"""No-loss soak for one work queue: a confirming publisher, competing
consumers acking every message by hand, and an exact tally at the end.

Not a test: it prints figures.  Run it against a release build:

    bench/soak_workqueue.py [--broker build/src/warrend] [--messages 1000000]
                            [--consumers 4] [--prefetch 100] [--size 64]
                            [--window 5000] [--persistent] [--prefill]
    bench/soak_workqueue.py --connect 127.0.0.1:5672     (a broker already running)

It starts the broker itself (on a free port, with a temporary data dir)
unless --connect is given, then:
  - 4 consumer processes each consume from the queue `soak` with prefetch
    100 and ack every delivery on its own (no multiple acks), writing the
    acks for one read's worth of deliveries in a single send;
  - one publisher process in confirm mode publishes --messages messages
    whose bodies start with a 64-bit sequence number, keeping at most
    --window of them unconfirmed;
  - when every message has been delivered it waits a moment for strays,
    stops the consumers, and counts per sequence number how often it was
    delivered, and per publish how often it was confirmed.

Prints throughput (publish, confirm and delivery rates), the spread over
consumers, and `lost=0 duplicated=0 redelivered=0 reordered=0 confirms=N
nacks=0 double_confirms=0 left_in_queue=0`; exits 1 if any of those is off.
The clients speak raw AMQP frames from separate processes so that Python is
not the bottleneck it would be with pika.
"""

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
QUEUE = "soak"
HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_MAX = 131072

pack_frame_head = struct.Struct(">BHI").pack
unpack_frame_head = struct.Struct(">BHI").unpack_from
unpack_ids = struct.Struct(">HH").unpack_from
unpack_u64 = struct.Struct(">Q").unpack_from
pack_u64 = struct.Struct(">Q").pack


# ---- a minimal AMQP client ---------------------------------------------

def shortstr(s):
    s = s.encode() if isinstance(s, str) else s
    return bytes([len(s)]) + s


def longstr(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(s)) + s


def frame(ftype, channel, payload):
    return pack_frame_head(ftype, channel, len(payload)) + payload + b"\xce"


def method(channel, class_id, method_id, args=b""):
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


class Client:
    """Blocking socket, a read buffer with an offset (no per-frame copies of
    the whole buffer), and just enough protocol for this soak."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def fill(self):
        data = self.s.recv(1 << 20)
        if not data:
            raise EOFError("broker closed the connection")
        if self.pos > (1 << 20) or self.pos == len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def next_frame(self):
        """(type, channel, payload bytes) of a complete buffered frame, or None."""
        if len(self.buf) - self.pos < 7:
            return None
        ftype, ch, size = unpack_frame_head(self.buf, self.pos)
        end = self.pos + 7 + size
        if len(self.buf) <= end:
            return None
        payload = bytes(self.buf[self.pos + 7:end])
        self.pos = end + 1
        return ftype, ch, payload

    def wait_method(self, class_id, method_id):
        while True:
            f = self.next_frame()
            if f is None:
                self.fill()
                continue
            if f[0] != 1:
                continue
            ids = unpack_ids(f[2], 0)
            if ids == (class_id, method_id):
                return f[2][4:]
            if ids in ((10, 50), (20, 40)):
                code = struct.unpack(">H", f[2][4:6])[0]
                text = f[2][7:7 + f[2][6]].decode(errors="replace")
                raise RuntimeError("broker closed: %d %s" % (code, text))

    def handshake(self):
        self.s.sendall(HEADER)
        self.wait_method(10, 10)
        resp = b"\x00guest\x00guest"
        caps = (shortstr("capabilities") + b"F" +
                struct.pack(">I", len(shortstr("publisher_confirms") + b"t\x01")) +
                shortstr("publisher_confirms") + b"t\x01")
        self.s.sendall(method(0, 10, 11, struct.pack(">I", len(caps)) + caps +
                              shortstr("PLAIN") + longstr(resp) + shortstr("en_US")))
        self.wait_method(10, 30)
        self.s.sendall(method(0, 10, 31, struct.pack(">HIH", 2047, FRAME_MAX, 0)))
        self.s.sendall(method(0, 10, 40, shortstr("/") + shortstr("") + b"\x00"))
        self.wait_method(10, 41)
        self.s.sendall(method(1, 20, 10, shortstr("")))
        self.wait_method(20, 11)

    def declare(self, durable):
        flags = 0x02 if durable else 0
        self.s.sendall(method(1, 50, 10, b"\x00\x00" + shortstr(QUEUE) + bytes([flags]) +
                              struct.pack(">I", 0)))
        args = self.wait_method(50, 11)
        n = args[0]
        return struct.unpack(">II", args[1 + n:9 + n])  # messages, consumers

    def close(self):
        try:
            self.s.sendall(method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") +
                                  b"\x00\x00\x00\x00"))
            self.s.settimeout(5)
            self.wait_method(10, 51)
        except (OSError, EOFError, RuntimeError):
            pass
        self.s.close()


# ---- consumer and publisher processes ----------------------------------

def consumer_main(idx, addr, n, prefetch, received, ready, stop, results):
    """Consume and ack one by one until told to stop; then send the
    per-sequence delivery counts and the anomalies seen to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    c = Client(*addr)
    c.handshake()
    c.s.sendall(method(1, 60, 10, struct.pack(">IHB", 0, prefetch, 0)))
    c.wait_method(60, 11)
    c.s.sendall(method(1, 60, 20, b"\x00\x00" + shortstr(QUEUE) + shortstr("soak-%d" % idx) +
                       b"\x00" + struct.pack(">I", 0)))
    c.wait_method(60, 21)
    ready.release()
    counts = bytearray(n)
    got = redelivered = reordered = 0
    last_seq = -1
    c.s.settimeout(0.2)
    ack_head = pack_frame_head(1, 1, 13) + struct.pack(">HH", 60, 80)
    pending_tag = 0
    first = True  # deliveries may have come in with consume-ok
    while not stop.is_set():
        if not first:
            try:
                c.fill()
            except socket.timeout:
                continue
        first = False
        acks = []
        buf = c.buf
        pos = c.pos
        blen = len(buf)
        while blen - pos >= 7:
            ftype, _, size = unpack_frame_head(buf, pos)
            end = pos + 7 + size
            if blen <= end:
                break
            if ftype == 1:
                p = pos + 7
                cid, mid = unpack_ids(buf, p)
                if cid == 60 and mid == 60:  # basic.deliver
                    p += 4
                    p += 1 + buf[p]
                    pending_tag = unpack_u64(buf, p)[0]
                    if buf[p + 8] & 1:
                        redelivered += 1
                elif cid in (10, 20) and mid == 40:
                    raise RuntimeError("consumer %d: broker closed the channel or connection" % idx)
            elif ftype == 3:
                seq = unpack_u64(buf, pos + 7)[0]
                if seq < n:
                    if counts[seq] < 255:
                        counts[seq] += 1
                    if seq < last_seq:
                        reordered += 1
                    last_seq = seq
                got += 1
                acks.append(ack_head + pack_u64(pending_tag) + b"\x00\xce")
            pos = end + 1
        c.pos = pos
        if acks:
            c.s.sendall(b"".join(acks))
            received[idx] = got
    c.s.settimeout(30)
    c.close()
    results.send((idx, got, redelivered, reordered))
    results.send_bytes(counts)
    results.close()


def publisher_main(addr, n, size, window, persistent, progress, results):
    """Publish n numbered messages in confirm mode with a bounded window;
    report how often each publish was confirmed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    c = Client(*addr)
    c.handshake()
    c.s.sendall(method(1, 85, 10, b"\x00"))
    c.wait_method(85, 11)
    pub = method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr(QUEUE) + b"\x00")
    # content header: class 60, weight 0, body size, flags; delivery-mode if persistent
    if persistent:
        props = struct.pack(">H", 0x1000) + b"\x02"
    else:
        props = struct.pack(">H", 0)
    header = frame(2, 1, struct.pack(">HHQ", 60, 0, size) + props)
    pad = b"\x00" * (size - 8)
    body_head = pack_frame_head(3, 1, size)
    confirmed = bytearray(n + 1)
    state = {"acked": 0, "nacks": 0, "double": 0, "low": 1}

    def settle(tag, multiple, ack):
        tags = range(state["low"], tag + 1) if multiple else (tag,)
        for t in tags:
            if t > n:
                state["double"] += 1
                continue
            if confirmed[t]:
                if not multiple:
                    state["double"] += 1
                continue
            confirmed[t] = 1
            if ack:
                state["acked"] += 1
            else:
                state["nacks"] += 1
        while state["low"] <= n and confirmed[state["low"]]:
            state["low"] += 1

    def read_confirms(block):
        c.s.settimeout(None if block else 0)
        try:
            c.fill()
        except (BlockingIOError, socket.timeout):
            return
        finally:
            c.s.settimeout(None)
        while True:
            f = c.next_frame()
            if f is None:
                break
            if f[0] != 1:
                continue
            ids = unpack_ids(f[2], 0)
            if ids == (60, 80) or ids == (60, 120):
                settle(unpack_u64(f[2], 4)[0], bool(f[2][12] & 1), ids == (60, 80))
            elif ids in ((10, 50), (20, 40)):
                raise RuntimeError("publisher: broker closed the channel or connection")

    started = time.monotonic()
    seq = 0
    batch = 200
    while seq < n:
        done = state["acked"] + state["nacks"]
        room = window - (seq - done)
        if room <= 0:
            read_confirms(True)
            continue
        k = min(batch, room, n - seq)
        out = []
        for i in range(seq, seq + k):
            out.append(pub)
            out.append(header)
            out.append(body_head + pack_u64(i) + pad + b"\xce")
        c.s.sendall(b"".join(out))
        seq += k
        progress[0] = seq
        progress[1] = state["acked"] + state["nacks"]
        read_confirms(False)
    published_at = time.monotonic()
    while state["acked"] + state["nacks"] < n:
        read_confirms(True)
        progress[1] = state["acked"] + state["nacks"]
    confirmed_at = time.monotonic()
    c.close()
    results.send({"published_s": published_at - started, "confirmed_s": confirmed_at - started,
                  "acked": state["acked"], "nacks": state["nacks"],
                  "double": state["double"]})
    results.close()


# ---- the broker ----------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(path, tmp):
    port = free_port()
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    log = open(os.path.join(tmp, "broker.log"), "wb")
    proc = subprocess.Popen([path, "--foreground", "--listen", "127.0.0.1:%d" % port,
                             "--data-dir", data], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("broker exited with status %d; see %s" % (proc.returncode, log.name))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("broker did not listen within 10 s")


def sanitizer_report(path):
    """The first sanitizer line in the broker's log (a sanitizer build was run)."""
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line or \
                        "runtime error:" in line:
                    return line.strip()
    except OSError:
        pass
    return None


def rss_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- main ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", default=os.path.join(TOP, "build", "src", "warrend"),
                    help="warrend to start (default: build/src/warrend, a release build)")
    ap.add_argument("--connect", metavar="HOST:PORT", help="use a running broker instead")
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--consumers", type=int, default=4)
    ap.add_argument("--prefetch", type=int, default=100)
    ap.add_argument("--size", type=int, default=64, help="body bytes (at least 8)")
    ap.add_argument("--window", type=int, default=5000, help="unconfirmed publishes in flight")
    ap.add_argument("--persistent", action="store_true",
                    help="durable queue and delivery-mode 2 messages")
    ap.add_argument("--prefill", action="store_true",
                    help="publish everything before the consumers start (a deep queue)")
    ap.add_argument("--stall", type=float, default=30, help="give up after this long without progress")
    args = ap.parse_args()
    if args.size < 8 or args.size > FRAME_MAX - 8:
        sys.exit("--size must be between 8 and %d" % (FRAME_MAX - 8))
    n = args.messages

    broker = None
    tmp = None
    if args.connect:
        host, port = args.connect.rsplit(":", 1)
        addr = (host, int(port))
    else:
        if not os.access(args.broker, os.X_OK):
            sys.exit("no broker at %s (build one, or pass --broker/--connect)" % args.broker)
        tmp = tempfile.mkdtemp(prefix="warren-soak-")
        broker, port = start_broker(args.broker, tmp)
        addr = ("127.0.0.1", port)
        print("broker %s (pid %d) on port %d, log %s/broker.log" % (args.broker, broker.pid,
                                                                  port, tmp))

    setup = Client(*addr)
    setup.handshake()
    setup.declare(args.persistent)
    setup.s.sendall(method(1, 50, 30, b"\x00\x00" + shortstr(QUEUE) + b"\x00"))  # purge
    setup.wait_method(50, 31)

    ctx = multiprocessing.get_context("fork")
    received = ctx.Array("q", args.consumers, lock=False)
    progress = ctx.Array("q", 2, lock=False)
    ready = ctx.Semaphore(0)
    stop = ctx.Event()
    consumers = []
    pipes = []

    def start_consumers():
        for i in range(args.consumers):
            parent_end, child_end = ctx.Pipe(duplex=False)
            p = ctx.Process(target=consumer_main, args=(i, addr, n, args.prefetch, received,
                                                        ready, stop, child_end))
            p.start()
            child_end.close()
            consumers.append(p)
            pipes.append(parent_end)
        for _ in consumers:
            if not ready.acquire(timeout=10):
                sys.exit("consumers did not start")

    if not args.prefill:
        start_consumers()
    pub_parent, pub_child = ctx.Pipe(duplex=False)
    publisher = ctx.Process(target=publisher_main, args=(addr, n, args.size, args.window,
                                                         args.persistent, progress, pub_child))
    print("soak: %d messages of %d bytes, %d consumers, prefetch %d, window %d, %s%s" % (
        n, args.size, args.consumers, args.prefetch, args.window,
        "persistent" if args.persistent else "transient",
        ", queue filled before consuming" if args.prefill else ""))
    started = consume_started = time.monotonic()
    publisher.start()
    pub_child.close()

    last_total, last_change, last_report = -1, time.monotonic(), started
    peak_rss = 0
    stalled = False
    while True:
        total = sum(received)
        now = time.monotonic()
        if broker:
            peak_rss = max(peak_rss, rss_kb(broker.pid, "VmRSS"))
        if args.prefill and not consumers and not publisher.is_alive():
            consume_started = now
            print("  queue filled in %.2f s, broker RSS %d MB; consuming" % (
                now - started, rss_kb(broker.pid, "VmRSS") // 1024 if broker else 0), flush=True)
            start_consumers()
        moved = total + progress[0] + progress[1]
        if moved != last_total:
            last_total, last_change = moved, now
        if total >= n and not publisher.is_alive() and consumers:
            break
        if now - last_change > args.stall or (broker and broker.poll() is not None):
            stalled = True
            break
        if now - last_report >= 5:
            print("  %5.0fs published %d confirmed %d delivered %d" % (
                now - started, progress[0], progress[1], total), flush=True)
            last_report = now
        time.sleep(0.05)
    delivered_at = time.monotonic() - consume_started
    time.sleep(1.0)  # let late duplicates show up
    stop.set()

    pubres = pub_parent.recv() if pub_parent.poll(10) else None
    counts = bytearray(n)
    per_consumer = []
    redelivered = reordered = 0
    for pipe in pipes:
        if not pipe.poll(30):
            print("a consumer did not report", file=sys.stderr)
            stalled = True
            continue
        idx, got, red, reord = pipe.recv()
        per_consumer.append(got)
        redelivered += red
        reordered += reord
        mine = pipe.recv_bytes()
        for i, v in enumerate(mine):
            if v:
                counts[i] = min(255, counts[i] + v)
    for p in consumers + [publisher]:
        p.join(10)
        if p.is_alive():
            p.kill()

    try:
        left = setup.declare(args.persistent)[0]
    except (OSError, EOFError, RuntimeError) as e:
        print("could not ask for the queue depth: %s" % e)
        left = -1
    setup.close()

    lost = counts.count(0)
    rc, sanitizer = 0, None
    duplicated = n - lost - counts.count(1)
    if broker:
        broker.send_signal(signal.SIGTERM)
        try:
            rc = broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
            rc = "killed after 10 s"
        print("broker exited: %s, peak RSS seen %d MB" % (rc, peak_rss // 1024))
        sanitizer = sanitizer_report(os.path.join(tmp, "broker.log"))
        if sanitizer:
            print("SANITIZER: %s" % sanitizer)

    if stalled:
        print("STALLED: no progress for %.0f s (delivered %d of %d)" % (args.stall, sum(received), n))
    if pubres:
        print("publish: %d msgs in %.2f s = %.0f msg/s; all confirmed after %.2f s = %.0f msg/s" % (
            n, pubres["published_s"], n / pubres["published_s"], pubres["confirmed_s"],
            n / pubres["confirmed_s"]))
    print("deliver: %d msgs in %.2f s = %.0f msg/s end to end; per consumer %s" % (
        sum(per_consumer), delivered_at, sum(per_consumer) / delivered_at, per_consumer))
    acked = pubres["acked"] if pubres else 0
    nacks = pubres["nacks"] if pubres else -1
    double = pubres["double"] if pubres else -1
    print("lost=%d duplicated=%d redelivered=%d reordered=%d confirms=%d nacks=%d "
          "double_confirms=%d left_in_queue=%d" % (lost, duplicated, redelivered, reordered,
                                                  acked, nacks, double, left))
    ok = (rc == 0 and not sanitizer and not stalled and lost == 0 and duplicated == 0 and
          redelivered == 0 and acked == n and nacks == 0 and double == 0 and left == 0)
    if ok and tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp:
        print("kept %s" % tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
