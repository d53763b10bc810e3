"""Instructions per nested read: our own cost as a count that a busy machine does not move.

`bench.inprocess` measures CPU time, which moves by a tenth when the other core is busy
(caches, frequency). Valgrind's callgrind counts the instructions the process executes instead,
the same for the same code and data whatever else runs. The app is started and driven over ASGI
twice, with a short and a long run of requests; the difference of the two totals divided by the
difference of the request counts is the cost of one request, without start-up and imports.
Callgrind runs the process about fifty times slower, so a few hundred requests are enough.

    python -m bench.instructions --customers 10000 --short 40 --long 240

Run it on two checkouts of the code, one after the other, to see what a change costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

import uvloop

from bench.database import prepare_database
from bench.inprocess import measure
from bench.run import BENCH_ENV

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")

# Work that runs by the clock is switched off: under callgrind a request takes fifty times
# longer, so a poller would run fifty times more often per request than it does in service and
# be counted as the request's cost. (Unknown settings are ignored by older checkouts.)
CLOCK_WORK_OFF = {
    "DOSSIER_INPROCESS_WORKER": "0",
    "DOSSIER_REMINDER_SECONDS": "0",
    "DOSSIER_WEBHOOK_DELIVER": "0",
    "DOSSIER_AUDIT_INDEX_SECONDS": "0",
    "DOSSIER_METRICS_REFRESH_SECONDS": "100000",
}


def _drive(requests: int, concurrency: int) -> None:
    """The child under valgrind: the warm-up only, `requests` of them."""
    uvloop.run(measure(0, concurrency, rounds=0, warmup=requests))


def _instructions(
    requests: int, concurrency: int, env: dict[str, str], keep: str | None = None
) -> int:
    with tempfile.TemporaryDirectory(prefix="dossier-callgrind-") as folder:
        out = f"{keep}/callgrind.{requests}" if keep else f"{folder}/out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            str(requests),
            "--concurrency",
            str(concurrency),
        ]
        done = subprocess.run(  # noqa: S603  # valgrind and our own interpreter
            command, env=env, capture_output=True, text=True, check=False
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--short", type=int, default=40)
    parser.add_argument("--long", type=int, default=240)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep", help="a folder for callgrind's files (callgrind_annotate them)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _drive(args.child, args.concurrency)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    database = asyncio.run(prepare_database(args.customers, keep=True, log=print))
    env = dict(os.environ)
    env.update(database.server_env(tempfile.mkdtemp(prefix="dossier-instructions-")))
    env.update(BENCH_ENV)
    env.update(CLOCK_WORK_OFF)
    env["PYTHONPATH"] = os.getcwd()  # this checkout's code, whichever venv runs it
    short = _instructions(args.short, args.concurrency, env, args.keep)
    long = _instructions(args.long, args.concurrency, env, args.keep)
    per_request = (long - short) / (args.long - args.short)
    print(
        f"instructions per request, c={args.concurrency}: {per_request / 1e6:.2f} M "
        f"({args.short} and {args.long} requests: {short / 1e9:.2f} and {long / 1e9:.2f} G)"
    )


if __name__ == "__main__":
    main()
