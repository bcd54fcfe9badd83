"""Memory test: a log that the in-memory loader cannot hold under an address-space limit is
converted and counted under the same limit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROWS = 1_000_000  # ~36 MB of CSV; the in-memory loader needs ~300 MB more address space
BUDGET_MB = 128  # address space allowed on top of what the process holds after warming up
CHUNK_ROWS = 20_000

# Run in a fresh process: imports and a tiny run of the same path first (TensorFlow's thread
# pools, the parser, tqdm), then RLIMIT_AS = the address space now in use + BUDGET_MB.
SCRIPT = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
mode, src, tiny, out, budget_mb, chunk_rows = sys.argv[1:]
import tensorflow as tf  # noqa: F401
from tfrec import config as config_lib
from tfrec.data import convert, csv_loader, shard_counts

def address_space():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

def run(path, folder):
    csv = config_lib.CsvConfig(title="", event_type="event_type", price="price")
    if mode == "in-memory":
        return len(csv_loader.load(csv.__class__(**{**csv.__dict__, "interactions": path})).interactions)
    data = config_lib.DataConfig(dataset="csv", path=path, csv=csv)
    convert.convert(data, folder, chunk_rows=int(chunk_rows))
    counts = shard_counts.count(folder)
    return sum(counts.items.values())

run(tiny, tempfile.mkdtemp() + "/warm")
base = address_space()
resource.setrlimit(resource.RLIMIT_AS, (base + int(budget_mb) * 2**20, resource.RLIM_INFINITY))
start = time.perf_counter()
try:
    events = run(src, out)
except MemoryError as e:
    print(json.dumps({"memory_error": repr(e)[:300]}))
    sys.exit(0)
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmPeak:"))
print(json.dumps({"events": events, "seconds": time.perf_counter() - start,
                  "growth_mb": (peak - base) / 2**20}))
"""


def _write_log(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pd.DataFrame(
        {
            "user_id": pd.Series(rng.integers(0, 50_000, rows)).map("u{}".format),
            "item_id": pd.Series(rng.integers(0, 20_000, rows)).map("i{}".format),
            "timestamp": np.sort(rng.integers(1_600_000_000, 1_700_000_000, rows)),
            "event_type": np.array(["view", "cart", "purchase"])[rng.integers(0, 3, rows)],
            "price": np.round(rng.uniform(1, 100, rows), 2),
        }
    ).to_csv(path, index=False)


def _run(mode: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Few malloc arenas: glibc reserves 64 MB of address space per arena and thread otherwise.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(tmp_path / "log.csv"),
         str(tmp_path / "tiny.csv"), str(tmp_path / mode), str(BUDGET_MB), str(CHUNK_ROWS)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    return done


def _result(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_convert_and_counts_fit_where_the_in_memory_loader_does_not(tmp_path):
    _write_log(tmp_path / "log.csv", ROWS)
    _write_log(tmp_path / "tiny.csv", 100, seed=1)
    control = _run("in-memory", tmp_path)
    # The whole log does not fit in the budget: a Python MemoryError, or C++ code (pyarrow's
    # CSV reader) aborting on std::bad_alloc.
    out_of_memory = control.returncode == 0 and "memory_error" in _result(control)
    aborted = control.returncode == -6 and "std::bad_alloc" in control.stderr
    assert out_of_memory or aborted, (control.returncode, control.stdout, control.stderr[-2000:])
    streamed = _result(_run("stream", tmp_path))
    assert streamed.get("events") == ROWS, streamed
    assert streamed["growth_mb"] < BUDGET_MB
    print(f"\nstreamed {ROWS:,} rows in {streamed['seconds']:.1f} s with "
          f"{streamed['growth_mb']:.0f} MB of address space over the warmed-up process")  # fmt: skip
