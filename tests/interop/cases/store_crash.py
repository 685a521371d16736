# broker: none
# timeout: 300
"""Ten rounds of the store's crash test (tests/crash/crash_test.py): publish
with confirms, consume, redefine, kill -9 (SIGTERM every fifth round),
restart, and check that no confirmed message was lost, no durably acked one
came back and every -ok'd definition survived.  The full run is
`tests/crash/crash_test.py --broker PATH` (100 rounds).

WARREN_CRASH_SEED and WARREN_CRASH_ROUNDS override the seed and the number
of rounds; the seed is printed so a failure can be replayed.
"""

import os
import random
import sys

sys.path.insert(0, os.path.join(os.environ["WARREN_SRCDIR"], "tests", "crash"))
import crash_test  # noqa: E402

tmp = os.environ["WARREN_TMP"]
seed = int(os.environ.get("WARREN_CRASH_SEED") or random.randrange(1 << 30))
rounds = os.environ.get("WARREN_CRASH_ROUNDS", "10")
args = crash_test.parser().parse_args([
    "--broker", os.environ["WARREN_BIN"], "--rounds", rounds, "--seed", str(seed),
    "--max-run", "2", "--term-every", "5", "--double-crash", "0.2",
    # logs straight in WARREN_TMP, where the harness looks for sanitizer reports
    "--dir", os.path.join(tmp, "crash"), "--log-dir", tmp])
passed, failed, totals = crash_test.run(args)
if failed:
    sys.stderr.write("store crash test failed (seed %d): %d of %d rounds\n"
                     % (seed, failed, passed + failed))
    sys.exit(1)
