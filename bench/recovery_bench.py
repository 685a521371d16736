#!/usr/bin/python3
"""Recovery time of Warren's message store: how long warrend takes to come
back with a full durable queue, after kill -9 and after a clean stop.

    bench/recovery_bench.py --broker build-rel/src/warrend [--messages 1000000]
                            [--size 1024] [--repeat 3] [--dir DIR] [--drop-caches]

Fills one durable queue with --messages persistent messages of --size bytes
(prebuilt frames in large writes, publisher confirms with a window, so the
broker is the bottleneck), then:
  crash   kill -9 and restart, --repeat times: every record of every
          segment is read and verified (replay);
  clean   SIGTERM (which writes the checkpoint) and restart, --repeat
          times: only the live message records are read.
For each restart it reports the time from exec to the "recovered" log line,
from exec to the AMQP port accepting a connection, the broker's own figure
from that line, the CPU time warrend used until then (which, unlike the
wall-clock figures, other load on the machine does not inflate) and its RSS
once it listens; the queue's message count is checked after each.  The target is <= 2 s from exec to accepting, for a
million 1 KiB messages, on a release build (no sanitizers).

By default the page cache is warm (the files were just written); with
--drop-caches (root) the caches are dropped before each restart.
Not a test: it prints figures and exits 0 unless something went wrong.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "crash"))
import amqpmini as amqp  # noqa: E402
from brokerproc import RECOVERED_RE, Recovered, free_port, port_open  # noqa: E402


class Bench:
    def __init__(self, args):
        self.args = args
        self.binary = os.path.abspath(args.broker)
        self.work = args.dir or tempfile.mkdtemp(prefix="warren-recovery-")
        self.data = os.path.join(self.work, "data")
        self.log = os.path.join(self.work, "broker.log")
        self.proc = None
        self.port = None
        os.makedirs(self.data, exist_ok=True)

    def start(self):
        """Exec warrend; (seconds to the recovered line, seconds to accepting, Recovered)."""
        if self.args.drop_caches:
            subprocess.run(["sync"])
            try:
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
            except OSError as e:
                sys.exit("--drop-caches: %s" % e)
        self.port = free_port()
        logf = open(self.log, "ab")
        offset = logf.tell()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.binary, "--foreground", "--listen", "127.0.0.1:%d" % self.port,
             "--data-dir", self.data], stdin=subprocess.DEVNULL, stdout=logf,
            stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        t_line = t_port = rec = None
        deadline = t0 + 600
        while (t_line is None or t_port is None) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit("warrend exited with status %d; see %s" % (self.proc.returncode, self.log))
            if t_line is None:
                with open(self.log, "rb") as f:
                    f.seek(offset)
                    m = RECOVERED_RE.search(f.read().decode(errors="replace"))
                if m:
                    t_line = time.monotonic() - t0
                    rec = Recovered(m)
            if t_port is None and port_open(self.port):
                t_port = time.monotonic() - t0
            time.sleep(0.002)
        if t_line is None or t_port is None:
            sys.exit("warrend did not recover and listen within 600 s")
        return t_line, t_port, rec

    def rss_mib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def cpu_seconds(self):
        """warrend's user + system CPU time so far (contention does not count)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(300)
        self.proc = None
        if rc != 0:
            sys.exit("warrend exited with status %d after SIGTERM; see %s" % (rc, self.log))
        return time.monotonic() - t0

    def fill(self):
        """Publish the messages with confirms; returns (messages/s, MB/s)."""
        n, size, window = self.args.messages, self.args.size, self.args.window
        c = amqp.Client("127.0.0.1", self.port, timeout=120)
        c.channel_open(1)
        c.queue_declare(1, "bench.recovery", durable=True)
        c.confirm_select(1)
        confirmed = [0]

        def on_confirm(ch, tag, multiple, ack):
            if not ack:
                sys.exit("publish %d was nacked" % tag)
            confirmed[0] = tag if multiple else max(confirmed[0], tag)

        c.on_confirm = on_confirm
        body = os.urandom(size)
        c.publish(1, "", "bench.recovery", body, amqp.props(delivery_mode=2))
        one = c.out.pop()
        batch = 256
        chunk = one * batch
        sent = 0
        t0 = time.monotonic()
        while confirmed[0] < n:
            while sent < n and sent - confirmed[0] + batch <= window:
                k = min(batch, n - sent)
                c.queue_out(chunk if k == batch else one * k)
                sent += k
                c.flush()
            c.poll(1.0)
        secs = time.monotonic() - t0
        c.close()
        return n / secs, n * size / secs / 1e6

    def count(self):
        c = amqp.Client("127.0.0.1", self.port, timeout=120)
        c.channel_open(1)
        _, count, _ = c.queue_declare(1, "bench.recovery", passive=True)
        c.close()
        return count

    def du_mb(self):
        total = 0
        for root, _, files in os.walk(self.data):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f)).st_blocks * 512
                except OSError:
                    pass
        return total / 1e6

    def restart(self, how):
        if how == "crash":
            self.kill9()
            down = 0.0
        else:
            down = self.stop()
        t_line, t_port, rec = self.start()
        rss = self.rss_mib()
        cpu = self.cpu_seconds()
        count = self.count()
        if count != self.args.messages or rec.messages != self.args.messages:
            sys.exit("after %s: the queue holds %d messages, the log says %d, expected %d"
                     % (how, count, rec.messages, self.args.messages))
        if (how == "clean") != rec.checkpoint:
            sys.exit("after %s the checkpoint was %sused" % (how, "" if rec.checkpoint else "not "))
        return dict(line=t_line, port=t_port, own=rec.seconds, cpu=cpu, rss=rss, down=down)

    def run(self):
        a = self.args
        print("recovery bench: %s, %d persistent messages of %d bytes, data in %s"
              % (self.binary, a.messages, a.size, self.data))
        self.start()
        rss0 = self.rss_mib()
        rate, mbs = self.fill()
        rss_full = self.rss_mib()
        print("fill: %.0f msgs/s (%.0f MB/s) with a window of %d; RSS %.0f MiB empty, "
              "%.0f MiB holding them; data dir %.0f MB"
              % (rate, mbs, a.window, rss0, rss_full, self.du_mb()))
        results = {}
        for how in ("crash", "clean"):
            runs = []
            for i in range(a.repeat):
                r = self.restart(how)
                runs.append(r)
                print("%-5s %d: exec -> recovered line %.3f s, -> accepting %.3f s "
                      "(broker's own figure %.3f s, CPU %.2f s), RSS %.0f MiB%s"
                      % (how, i + 1, r["line"], r["port"], r["own"], r["cpu"], r["rss"],
                         ", SIGTERM took %.2f s" % r["down"] if how == "clean" else ""))
            results[how] = runs
        self.stop()
        print()
        print("%-6s %10s %10s %10s %10s %9s" % ("", "recovered", "accepting", "broker", "CPU",
                                               "RSS MiB"))
        for how, runs in results.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print("%-6s %9.3fs %9.3fs %9.3fs %9.2fs %9.0f   (median of %d; target <= 2 s)"
                  % (how, med["line"], med["port"], med["own"], med["cpu"], med["rss"],
                     len(runs)))
        if not a.dir and not a.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def cleanup(self):
        if self.proc is not None:
            self.kill9()


def main():
    ap = argparse.ArgumentParser(description="Recovery time of Warren's message store.")
    ap.add_argument("--broker", required=True, help="warrend binary (a release build)")
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=1024, help="body bytes")
    ap.add_argument("--window", type=int, default=8192, help="unconfirmed publishes")
    ap.add_argument("--repeat", type=int, default=3, help="restarts of each kind")
    ap.add_argument("--dir", help="work directory (kept); default a temporary one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--drop-caches", action="store_true",
                    help="drop the page cache before each start (root)")
    args = ap.parse_args()
    b = Bench(args)
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
