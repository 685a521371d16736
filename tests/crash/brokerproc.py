"""Start, kill and restart warrend on one data directory, for the store tests.

A Broker owns one data directory and at most one running warrend on it.
Every start picks a free loopback port and appends to a log file whose name
ends in .log (the interop harness scans those for sanitizer reports); the
time from exec to the port accepting and the broker's "recovered ..." log
line are recorded for each start.  warrenctl is found next to warrend
unless given.  Nothing here ever signals a process it did not start.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "runtime error:", "UndefinedBehaviorSanitizer")

RECOVERED_RE = re.compile(
    r"recovered (\d+) queues, (\d+) messages \((\d+) bytes\) in ([0-9.]+) s"
    r"(?P<cp> from the clean-shutdown checkpoint)?; (\d+) damaged records, "
    r"(\d+) bytes of torn tail truncated")


class BrokerError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def sanitizer_report(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if any(p in line for p in SANITIZER_PATTERNS):
                    return line.strip()
    except OSError:
        pass
    return None


class Recovered:
    """The figures of one "recovered ..." log line."""

    def __init__(self, m):
        self.queues, self.messages, self.bytes = int(m.group(1)), int(m.group(2)), int(m.group(3))
        self.seconds = float(m.group(4))
        self.checkpoint = m.group("cp") is not None
        self.damaged, self.truncated = int(m.group(6)), int(m.group(7))

    def __str__(self):
        return "%d queues, %d messages in %.3f s%s, %d damaged, %d torn" % (
            self.queues, self.messages, self.seconds,
            " (checkpoint)" if self.checkpoint else "", self.damaged, self.truncated)


class Broker:
    def __init__(self, binary, data_dir, log_dir, ctl=None, extra_args=(), env=None,
                 start_timeout=60.0):
        self.binary = os.path.abspath(binary)
        self.data_dir = os.path.abspath(data_dir)
        self.log_dir = os.path.abspath(log_dir)
        self.ctl = ctl or os.path.join(os.path.dirname(self.binary), "warrenctl")
        self.extra_args = list(extra_args)
        self.env = dict(env if env is not None else os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.log_path = None
        self.log_offset = 0
        self.started_at = None
        self.listen_seconds = None   # exec -> port accepting, last start
        self.recovered = None        # Recovered of the last start
        os.makedirs(self.data_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/%%2f" % self.port

    def start(self, log_name="broker.log", wait=True, port=None):
        """Exec warrend; with wait, return once the port accepts."""
        if self.proc is not None:
            raise BrokerError("broker already running (pid %d)" % self.proc.pid)
        self.port = port or free_port()
        self.log_path = os.path.join(self.log_dir, log_name)
        log = open(self.log_path, "ab")
        self.log_offset = log.tell()
        argv = [self.binary, "--foreground", "--listen", "127.0.0.1:%d" % self.port,
                "--data-dir", self.data_dir] + self.extra_args
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        log.close()
        self.listen_seconds = None
        self.recovered = None
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self):
        deadline = self.started_at + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise BrokerError("warrend exited with status %d before listening; log:\n%s"
                                  % (rc, self.log_tail()))
            if port_open(self.port):
                self.listen_seconds = time.monotonic() - self.started_at
                self.recovered = self.recovered_line()
                return
            time.sleep(0.005)
        raise BrokerError("warrend did not listen within %g s; log:\n%s"
                          % (self.start_timeout, self.log_tail()))

    def log_text(self):
        """What the current (or last) start wrote to the log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def recovered_line(self):
        m = RECOVERED_RE.search(self.log_text())
        return Recovered(m) if m else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL and reap; returns nothing (the status is always -9)."""
        if self.proc is None:
            return
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def stop(self, timeout=30.0):
        """SIGTERM; raises BrokerError unless warrend exits 0 in time."""
        if self.proc is None:
            return
        p = self.proc
        self.proc = None
        if p.poll() is not None:
            raise BrokerError("warrend had already exited with status %d; log:\n%s"
                              % (p.returncode, self.log_tail()))
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise BrokerError("warrend did not exit within %g s of SIGTERM" % timeout)
        if rc != 0:
            raise BrokerError("warrend exited with status %d after SIGTERM; log:\n%s"
                              % (rc, self.log_tail()))

    def cleanup(self):
        """Kill whatever is still running (for finally: blocks)."""
        if self.proc is not None:
            self.kill9()

    def sanitizer_report(self):
        return sanitizer_report(self.log_path) if self.log_path else None

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return None

    # ---- warrenctl ------------------------------------------------------

    def ctl_run(self, *args, check=True, online=True, timeout=120):
        """Run warrenctl; (status, stdout, stderr)."""
        argv = [self.ctl]
        if online:
            argv += ["-d", self.data_dir]
        argv += list(args)
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env, timeout=timeout)
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if check and r.returncode != 0:
            raise BrokerError("warrenctl %s: status %d: %s%s" % (" ".join(args), r.returncode,
                                                                  out, err))
        return r.returncode, out, err

    def ctl_json(self, *args):
        _, out, _ = self.ctl_run("-f", "json", *args)
        return json.loads(out) if out.strip() else None

    def du_bytes(self, sub=""):
        total = 0
        for root, _, files in os.walk(os.path.join(self.data_dir, sub)):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f)).st_blocks * 512
                except OSError:
                    pass
        return total
