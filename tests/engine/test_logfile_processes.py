"""Two processes writing the one log file while it rotates (the app and a command, two commands at once): no
logging error, no file over the limit, and what the files keep is the newest records of both, without a gap."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 20_000
RECORDS = 3000
WRITER = """
import logging, sys, time
import engine.logfile as logfile
logfile.MAX_BYTES = int(sys.argv[2])
logfile.attach_log_file()
logging.getLogger().setLevel(logging.INFO)
time.sleep(max(0.0, float(sys.argv[5]) - time.time()))  # both start writing at once
sent = []
for i in range(int(sys.argv[3])):
    t = time.monotonic_ns()  # one clock for the whole machine: orders the records of both processes
    logging.getLogger("writer").info("%s %06d %d %s", sys.argv[1], i, t, "x" * 100)
    sent.append(t)
open(sys.argv[4], "w").write("\\n".join(map(str, sent)))
"""


def test_two_processes_rotating_one_log_file_keep_its_newest_records_and_its_limit(tmp_path):
    env = {**os.environ, "PARLEY_HOME": str(tmp_path / "home")}
    start = str(time.time() + 3.0)  # (after both have imported Parley, on a loaded machine too)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(MAX_BYTES), str(RECORDS),
                                 str(tmp_path / f"{name}.sent"), start], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                                text=True) for name in "AB"]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    assert not any("Logging error" in e or "Traceback" in e for e in errors), errors

    logs = tmp_path / "home" / "logs"
    files = [logs / "parley.log", logs / "parley.log.1", logs / "parley.log.2"]
    assert sorted(p.name for p in logs.glob("parley.log*") if not p.name.endswith(".lock")) == \
        [f.name for f in files]
    record_bytes = 260  # (a generous upper bound of one line)
    assert all(f.stat().st_size <= MAX_BYTES + record_bytes for f in files), [f.stat().st_size for f in files]
    assert sum(f.stat().st_size for f in files[1:]) >= 2 * (MAX_BYTES - record_bytes)  # the backups are full

    kept = {(m[1], int(m[2])) for f in files for m in re.finditer(r" ([AB]) (\d{6}) \d+ x", f.read_text())}
    sent = {(name, i): int(t) for name in "AB"
            for i, t in enumerate((tmp_path / f"{name}.sent").read_text().split())}
    oldest_kept = min(sent[k] for k in kept)
    # Everything written after the oldest record kept is kept too (give or take the records written while the
    # other process rotated, which go on into the file it just renamed: 50 ms).
    missing = [k for k, t in sent.items() if t > oldest_kept + 50_000_000 and k not in kept]
    assert not missing, f"{len(missing)} records newer than kept ones are gone, e.g. {missing[:5]}"
    for name in "AB":  # each process's own records: a tail up to its last one, no gap
        mine = sorted(i for n, i in kept if n == name)
        assert not mine or mine == list(range(mine[0], RECORDS)), (name, mine[:3], len(mine))
