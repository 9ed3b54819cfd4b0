#!/usr/bin/env python3
"""onebox backup benchmark: snapshot throughput beside cp and sqlite3's .backup, creates and
point reads while a backup runs, and restore time.

    python3 bench/backup.py [--quick] [--rows N] [--runs N] [--load-duration S]
                            [--no-build] [--bin PATH]

Python 3.11 standard library only, plus wrk and sqlite3, like bench.py, whose functions it
imports (seeding, the server process, wrk and its Lua scripts, /proc readings, machine facts).
Everything it starts is killed on exit (also on Ctrl-C), its temp dir is removed, and every wait
has a time bound. See bench/README.md, "Backup benchmark".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as b  # noqa: E402  (bench.py: the HTTP harness whose pieces this reuses)

ROOT = b.ROOT
RESULTS = b.RESULTS
MB = 1e6  # throughput and sizes here are in MB = 10^6 bytes, like onebox's own summary line

# Seeded database size per row (bench.py's `posts` rows with their indexes and change-log
# entries, after ANALYZE): 1,000,000 rows gave a 955.0 MB file, 39% of it the change log
# `_changes` with its after-image JSON (measured; see bench/README.md).
BYTES_PER_ROW = 955.0
DEFAULT_BYTES = 1000 * MB
QUICK_BYTES = 100 * MB
DISK_FACTOR = 6  # free space needed: the database, a copy, a snapshot, artifacts, a restore…
STALL = 0.1  # a second with fewer answers than this × the baseline rate counts as stalled
BACKUP_START = 2.0  # seconds into a load run when `onebox backup now` starts
LOAD_MAX = 120
CMD_TIMEOUT = 1800  # any one backup, restore, copy: a bound, not an expectation
# Scheduled jobs off in every onebox process the harness starts: nothing but the measured
# backup may run (the default schedule has a backup at 03:00 UTC).
JOBS_OFF = {"ONEBOX_JOBS__BACKUP": "off", "ONEBOX_JOBS__PRUNE": "off", "ONEBOX_JOBS__OPTIMIZE": "off"}
ENV = {"ONEBOX_LOG_LEVEL": "warn", **JOBS_OFF}  # bench.Server sets the log level itself

SUMMARY = re.compile(
    r"^(?P<id>\S+): (?P<db>.+?) → (?P<file>.+?) in (?P<total>[\d.]+) s \(snapshot (?P<snapshot>[\d.]+) s, "
    r"check (?P<check>[\d.]+) s, pack (?P<pack>[\d.]+) s, store (?P<store>[\d.]+) s\) on (?P<targets>[^;]+?); "
    r"change seq (?P<seq>\d+)", re.M)
PHASES = ("snapshot", "check", "pack", "store")

# Appended to bench.py's Lua scripts: answers counted per wall-clock second (os.time(), the same
# epoch clock as Python's time.time()), so the rate while the backup ran can be told apart from
# the rate before and after it. Status ≥ 400 counts as an error, as wrk's "Non-2xx or 3xx".
LUA_PER_SECOND = r"""
local counted_threads = {}
function setup(thread) table.insert(counted_threads, thread) end
ok_at, bad_at = {}, {}
function response(status, headers, body)
  local s = os.time()
  if status < 400 then ok_at[s] = (ok_at[s] or 0) + 1 else bad_at[s] = (bad_at[s] or 0) + 1 end
end
function done(summary, latency, requests)
  local ok, bad = {}, {}
  for _, t in ipairs(counted_threads) do
    for s, n in pairs(t:get("ok_at")) do ok[s] = (ok[s] or 0) + n end
    for s, n in pairs(t:get("bad_at")) do bad[s] = (bad[s] or 0) + n end
  end
  for s, n in pairs(ok) do io.write(string.format("SEC %d %d %d\n", s, n, bad[s] or 0)) end
  for s, n in pairs(bad) do
    if not ok[s] then io.write(string.format("SEC %d 0 %d\n", s, n)) end
  end
end
"""


def log(msg: str) -> None:
    print(f"[backup-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Commands with their own wall time, CPU time and peak RSS (os.wait4 gives the child's rusage)

def timed(cmd: list[str], timeout: float = CMD_TIMEOUT, env: dict | None = None,
          workdir: Path | None = None) -> dict:
    """Run `cmd` to completion. Returns wall seconds, CPU seconds (user + system), peak RSS in
    MB and the output; a BenchError when it fails or runs out of time."""
    scratch = Path(tempfile.mkstemp(prefix="cmd-", dir=workdir)[1])
    err_path = scratch.with_suffix(".err")
    with open(scratch, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = b.spawn(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                    env=dict(os.environ, **ENV, **(env or {})))
    fired = threading.Event()

    def kill():
        fired.set()
        p.kill()
    watchdog = threading.Timer(timeout, kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        watchdog.cancel()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p in b.PROCS:
        b.PROCS.remove(p)
    stdout = scratch.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    scratch.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    shown = " ".join(cmd)[:200]
    if fired.is_set():
        raise b.BenchError(f"timed out after {timeout:.0f} s: {shown}")
    if p.returncode != 0:
        raise b.BenchError(f"failed ({p.returncode}): {shown}\n{(stderr or stdout).strip()[-2000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024,
            "stdout": stdout, "stderr": stderr}


def warm(path: Path) -> float:
    """Read the whole file (so it is in the page cache); the MB/s of that read."""
    buf = bytearray(4 << 20)
    n = 0
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            n += k
    return n / MB / (time.perf_counter() - t0)


def fsync_file(path: Path) -> float:
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------------------------
# onebox's backup and restore

class Onebox:
    def __init__(self, data: Path):
        self.data = data
        self.backups = data / "backups"  # the default local target (backup.local_dir)

    def cmd(self, *args: str) -> list[str]:
        return [str(b.BIN), "--data-dir", str(self.data), *args]

    def clear_backups(self) -> None:
        """Only the backup about to be taken is kept: disk stays bounded, restore finds it."""
        if self.backups.is_dir():
            for f in self.backups.iterdir():
                if f.is_file():
                    f.unlink()

    def backup(self) -> dict:
        self.clear_backups()
        started = time.time()
        r = timed(self.cmd("backup", "now"), workdir=self.data.parent)
        r["started"] = started
        r["ended"] = started + r["wall_s"]
        m = SUMMARY.search(r["stdout"])
        if not m:
            raise b.BenchError("`onebox backup now` printed no summary line of the expected form "
                               f"(`<id>: A → B in T s (snapshot …, check …, pack …, store …) on …; "
                               f"change seq N`):\n{r['stdout'][-1000:]}")
        r["summary"] = m.group(0)
        r["id"] = m.group("id")
        r["total_s"] = float(m.group("total"))
        r["phases"] = {k: float(m.group(k)) for k in PHASES}
        r["change_seq"] = int(m.group("seq"))
        manifest = json.loads((self.backups / f"{r['id']}.json").read_text())
        r["db_bytes"] = manifest["db_bytes"]
        r["file_bytes"] = manifest["file_bytes"]
        for k in ("stdout", "stderr"):
            r[k] = r[k].strip()[-2000:]
        return r

    def kept_aside(self) -> list[Path]:
        return sorted(self.data.glob("onebox.db.before-restore-*"))

    def restore(self) -> dict:
        for f in self.kept_aside():
            f.unlink()
        r = timed(self.cmd("restore", "latest"), workdir=self.data.parent)
        if "restored backup" not in r["stdout"]:
            raise b.BenchError(f"`onebox restore latest` said something unexpected:\n{r['stdout'][-1000:]}")
        r["stdout"] = r["stdout"].strip()[-1000:]
        r["stderr"] = r["stderr"].strip()[-1000:]
        for f in self.kept_aside():
            f.unlink()
        return r


# --------------------------------------------------------------------------------------------
# 1. Snapshot throughput

def median_of(runs: list[dict], key) -> float:
    return statistics.median(key(r) for r in runs)


def bench_snapshot(ob: Onebox, db: Path, scratch: Path, runs: int) -> dict:
    """cp, cp + fsync, sqlite3 .backup and `onebox backup now`, round-robin `runs` times, each
    after a read of the whole file, the server stopped."""
    res: dict = {"warm_read_mb_s": [], "cp": [], "cp_fsync": [], "sqlite3": [], "onebox": []}
    copy = scratch / "copy.db"
    for i in range(runs):
        log(f"  round {i + 1}/{runs}: cp, sqlite3 .backup, onebox backup now")
        db_bytes = size(db)

        res["warm_read_mb_s"].append(warm(db))
        r = timed(["cp", "--reflink=never", str(db), str(copy)])
        sync_s = fsync_file(copy)
        copy.unlink()
        res["cp"].append({"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "db_bytes": db_bytes})
        res["cp_fsync"].append({"wall_s": r["wall_s"] + sync_s, "fsync_s": sync_s, "db_bytes": db_bytes})

        res["warm_read_mb_s"].append(warm(db))
        r = timed(["sqlite3", str(db), f".backup '{copy}'"])
        copy.unlink()
        res["sqlite3"].append({"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"],
                               "db_bytes": db_bytes})

        res["warm_read_mb_s"].append(warm(db))
        r = ob.backup()
        res["onebox"].append(r)
        log(f"    cp {res['cp'][-1]['wall_s']:.2f} s (+ fsync {sync_s:.2f} s), sqlite3 .backup "
            f"{res['sqlite3'][-1]['wall_s']:.2f} s, onebox: {r['summary']}")

    o = res["onebox"]
    med = {
        "db_bytes": statistics.median(r["db_bytes"] for r in o),
        "file_bytes": statistics.median(r["file_bytes"] for r in o),
        "snapshot_s": median_of(o, lambda r: r["phases"]["snapshot"]),
        "total_s": median_of(o, lambda r: r["total_s"]),
        "process_wall_s": median_of(o, lambda r: r["wall_s"]),
        "process_cpu_s": median_of(o, lambda r: r["cpu_s"]),
        "process_peak_rss_mb": max(r["peak_rss_mb"] for r in o),
        "phases_s": {k: median_of(o, lambda r, k=k: r["phases"][k]) for k in PHASES},
        "cp_s": median_of(res["cp"], lambda r: r["wall_s"]),
        "cp_fsync_s": median_of(res["cp_fsync"], lambda r: r["wall_s"]),
        "sqlite3_s": median_of(res["sqlite3"], lambda r: r["wall_s"]),
        "warm_read_mb_s": statistics.median(res["warm_read_mb_s"]),
    }
    file_mb = statistics.median(r["db_bytes"] for r in res["cp"]) / MB
    med["file_mb"] = file_mb
    for k in ("cp", "cp_fsync", "sqlite3"):
        med[f"{k}_mb_s"] = file_mb / med[f"{k}_s"]
    med["snapshot_mb_s"] = med["db_bytes"] / MB / med["snapshot_s"] if med["snapshot_s"] else None
    med["total_mb_s"] = med["db_bytes"] / MB / med["total_s"] if med["total_s"] else None
    # Speed ratios: onebox's snapshot speed ÷ the other copy's speed (> 1: onebox is faster).
    for k in ("cp", "cp_fsync", "sqlite3"):
        med[f"snapshot_vs_{k}"] = (med[f"{k}_s"] / med["snapshot_s"]) if med["snapshot_s"] else None
    res["median"] = med
    return res


# --------------------------------------------------------------------------------------------
# 2. Load while a backup runs

def parse_seconds(out: str) -> dict[int, tuple[int, int]]:
    return {int(s): (int(ok), int(bad)) for s, ok, bad in re.findall(r"^SEC (\d+) (\d+) (\d+)$", out, re.M)}


def load_run(ob: Onebox, srv: b.Server, url: str, script: Path, args: list[str], duration: int,
             with_backup: bool) -> dict:
    """One wrk run of `duration` s; with `with_backup`, `onebox backup now` starts BACKUP_START s
    in. Also: server CPU per request, server peak RSS, the largest WAL seen (polled)."""
    wal = ob.data / "onebox.db-wal"
    stop_polling = threading.Event()
    wal_seen: list[tuple[float, int]] = []  # (seconds into the run, WAL bytes)

    def poll_wal():
        while True:
            wal_seen.append((time.time() - t0, size(wal)))
            if stop_polling.wait(0.2):
                break
    poller = threading.Thread(target=poll_wal, daemon=True)

    backup: dict = {}
    t0 = time.time()

    def take_backup():
        time.sleep(max(0.0, t0 + BACKUP_START - time.time()))
        try:
            backup.update(ob.backup())
        except b.BenchError as e:
            backup["error"] = str(e)
    taker = threading.Thread(target=take_backup, daemon=True)

    hwm_ok = b.reset_hwm(srv.pid)
    c0 = b.cpu_ticks(srv.pid)
    poller.start()
    if with_backup:
        taker.start()
    try:
        out, r = b.wrk(url, duration, script, args)
    finally:
        stop_polling.set()
    wrk_end = time.time()
    c1 = b.cpu_ticks(srv.pid)
    hwm = b.proc_status_kb(srv.pid, "VmHWM")
    if with_backup:
        taker.join(CMD_TIMEOUT + 10)
        if taker.is_alive():
            raise b.BenchError("the backup under load did not end")
        if "error" in backup:
            raise b.BenchError(f"the backup under load failed: {backup['error']}")
    poller.join(5)
    r["cpu_us_per_req"] = ((c1 - c0) / b.CLK_TCK * 1e6 / r["requests"]) if r["requests"] else None
    r["peak_rss_mb"] = hwm / 1024 if hwm and hwm_ok else None
    r["wal_max_mb"] = max(n for _, n in wal_seen) / MB
    r["wal_mb_timeline"] = [(round(t, 2), round(n / MB, 1)) for t, n in wal_seen]
    r["duration_s"] = duration
    secs = parse_seconds(out)
    r["per_second"] = {str(s): v for s, v in sorted(secs.items())}
    r["wrk_output"] = out[-3000:]
    if with_backup:
        r["backup"] = backup
        start, end = backup["started"], backup["ended"]
        r["backup_start_s"] = start - t0
        r["backup_end_s"] = end - t0
        r["backup_inside_run"] = end <= wrk_end
        # Whole seconds that lie inside the backup's run (and inside wrk's): their answers.
        inside = list(range(math.ceil(start), math.floor(min(end, wrk_end))))
        counts = [secs.get(s, (0, 0)) for s in inside]
        r["window_secs"] = inside
        r["backup_window_seconds"] = len(inside)
        if inside:
            r["rps_during_backup"] = sum(ok for ok, _ in counts) / len(inside)
            r["min_1s_during_backup"] = min(ok for ok, _ in counts)
            r["errors_during_backup"] = sum(bad for _, bad in counts)
        else:
            r["rps_during_backup"] = r["min_1s_during_backup"] = r["errors_during_backup"] = None
    else:
        # The whole seconds of the run (the first and last, partial, cut).
        r["window_secs"] = list(range(min(secs) + 1, max(secs))) if secs else []
        steady = [secs.get(s, (0, 0))[0] for s in r["window_secs"]]
        r["min_1s"] = min(steady) if steady else None
    return r


def bench_load(ob: Onebox, srv: b.Server, tmp: Path, ids_file: Path, token: str, admin_id: str,
               duration: int, warmup: int) -> dict:
    reads_lua = tmp / "ids-counted.lua"
    reads_lua.write_text(b.LUA_IDS + LUA_PER_SECOND)
    create_lua = tmp / "create-counted.lua"
    create_lua.write_text(b.LUA_CREATE + LUA_PER_SECOND)
    rec_path = "/api/collections/posts/records"
    base = srv.base
    tag = time.strftime("%H%M%S")
    calls = [0]

    def unique() -> str:
        calls[0] += 1
        return f"bk{tag}-{calls[0]}"
    scenarios = {
        "reads": ("(b) point read by id", base + "/", reads_lua, lambda: [str(ids_file), rec_path + "/"]),
        "creates": ("(e) create", base + rec_path, create_lua, lambda: [token, unique(), admin_id]),
    }
    out: dict = {}
    for key, (name, url, script, args) in scenarios.items():
        log(f"  {name}: warm-up {warmup} s, then {duration} s without a backup")
        b.wrk(url, warmup, script, args(), latency=False)
        base_run = load_run(ob, srv, url, script, args(), duration, with_backup=False)
        log(f"    baseline {base_run['rps']:,.0f}/s, p50 {b.fmt_ms(base_run['p50_ms'])} ms, "
            f"p99 {b.fmt_ms(base_run['p99_ms'])} ms, errors {base_run['errors']}")
        log(f"  {name}: warm-up {warmup} s, then {duration} s with `backup now` from {BACKUP_START:.0f} s")
        b.wrk(url, warmup, script, args(), latency=False)
        during = load_run(ob, srv, url, script, args(), duration, with_backup=True)
        bk = during["backup"]
        during["x_baseline"] = during["rps"] / base_run["rps"] if base_run["rps"] else None
        # Stalled seconds: whole seconds (of the baseline run; of the backup's run) in which fewer
        # than 10% of the baseline rate was answered.
        for run in (base_run, during):
            secs = {int(k): v for k, v in run["per_second"].items()}
            run["stalled_s"] = sum(1 for t in run["window_secs"]
                                   if secs.get(t, (0, 0))[0] < STALL * base_run["rps"])
        during["window_x_baseline"] = (during["rps_during_backup"] / base_run["rps"]
                                       if during["rps_during_backup"] is not None and base_run["rps"] else None)
        log(f"    with backup {during['rps']:,.0f}/s ({b.fmt_x(during['x_baseline'])} ×), p50 "
            f"{b.fmt_ms(during['p50_ms'])} ms, p99 {b.fmt_ms(during['p99_ms'])} ms, errors {during['errors']}; "
            f"{during['rps_during_backup'] or 0:,.0f}/s over the {during['backup_window_seconds']} whole s the "
            f"backup ran; backup: {bk['summary']}")
        out[key] = {"name": name, "baseline": base_run, "during": during}
    return out


# --------------------------------------------------------------------------------------------
# Preparing the data dir the way bench.py does

def prepare(tmp: Path, rows: int) -> dict:
    data = tmp / "data"
    data.mkdir()
    env = dict(os.environ, **ENV)
    b.run([str(b.BIN), "--data-dir", str(data), "admin", "create", "--email", b.EMAIL,
           "--password-stdin"], timeout=60, input=b.PASSWORD + "\n", env=env)
    token = b.run([str(b.BIN), "--data-dir", str(data), "token", "create", "--email", b.EMAIL,
                   "--name", "bench"], timeout=60, env=env).strip().splitlines()[-1].strip()
    if not token.startswith("obx_"):
        raise b.BenchError(f"token create printed something unexpected: {token[:40]!r}")
    srv = b.Server(data, JOBS_OFF)
    srv.start()
    me = b.expect(b.call("GET", f"{srv.base}/api/auth/me", token=token), 200, "GET /api/auth/me")
    admin_id = me.get("id") or (me.get("user") or {}).get("id")
    if not admin_id:
        raise b.BenchError(f"/api/auth/me has no id: {str(me)[:300]}")
    b.expect(b.call("POST", f"{srv.base}/api/collections", b.COLLECTION, token=token), 201,
             "POST /api/collections")
    srv.stop()
    db = data / "onebox.db"
    log(f"seeding {rows:,} rows with sqlite3 (bench.py's seed)")
    seed_s = b.seed(db, rows, admin_id)
    # Planner statistics now, once: every onebox process (the `backup now` CLI too) runs
    # `PRAGMA optimize` in the background at open, which on a freshly seeded file without
    # statistics is a full ANALYZE competing with the measured backup.
    t0 = time.perf_counter()
    b.run(["sqlite3", str(db), "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);"], timeout=CMD_TIMEOUT)
    analyze_s = time.perf_counter() - t0
    log(f"  seeded in {seed_s:.1f} s, ANALYZE {analyze_s:.1f} s; database {size(db) / MB:,.1f} MB")
    ids_file = tmp / "ids.txt"
    b.sample_ids(db, ids_file, min(rows, b.ID_SAMPLE))
    return {"data": data, "db": db, "token": token, "admin_id": admin_id, "ids_file": ids_file,
            "seed_s": seed_s, "analyze_s": analyze_s}


# --------------------------------------------------------------------------------------------
# Reporting

def f1(v, unit="") -> str:
    return "—" if v is None else f"{v:,.1f}{unit}"


def f2(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def report(doc: dict) -> str:
    mf, s = doc["machine"], doc["settings"]
    lines = ["# onebox backup benchmark", "",
             f"- command: `{doc['command']}`",
             f"- started: {doc['started']}; commit {(doc['git']['commit'] or '?')[:12]}"
             f"{' (uncommitted changes under src/)' if doc['git']['dirty'] else ''}",
             f"- machine: {mf['nproc']} CPUs, {mf['cpu_model']}, Linux {mf['kernel']}, "
             f"{mf['mem_total_mb']} MB RAM ({mf['mem_available_mb']} MB available), "
             f"load average at start {', '.join(f'{x:.2f}' for x in mf['loadavg_at_start'])}",
             f"- binary: {doc['binary']['path']} ({doc['binary']['size_bytes'] / 2**20:.1f} MiB); "
             f"sqlite3 {mf['sqlite3']}; {mf['wrk']}; temp dir on {doc['tmp_fs']}",
             f"- database: `posts` with {s['rows']:,} rows (bench.py's seed, then ANALYZE), "
             f"{doc['db_mb']:,.1f} MB; MB = 10^6 bytes throughout",
             ""]
    sn = doc.get("snapshot")
    if sn:
        m = sn["median"]
        lines += [f"## 1. Snapshot throughput (median of {s['runs']}, server stopped, warm page cache)", "",
                  f"The page cache is warm: the harness reads the whole file before every copy "
                  f"(that read ran at {m['warm_read_mb_s']:,.0f} MB/s, median). Copies go to the same "
                  f"file system and are deleted after.", "",
                  "| copy | seconds | MB/s | onebox snapshot speed ÷ this |",
                  "|---|---:|---:|---:|",
                  f"| onebox `backup now`: snapshot phase | {m['snapshot_s']:.2f} | {f1(m['snapshot_mb_s'])} | 1.00 |",
                  f"| `cp --reflink=never` | {m['cp_s']:.2f} | {m['cp_mb_s']:,.1f} | {f2(m['snapshot_vs_cp'])} |",
                  f"| `cp` then fsync | {m['cp_fsync_s']:.2f} | {m['cp_fsync_mb_s']:,.1f} | {f2(m['snapshot_vs_cp_fsync'])} |",
                  f"| `sqlite3 db \".backup copy\"` | {m['sqlite3_s']:.2f} | {m['sqlite3_mb_s']:,.1f} | {f2(m['snapshot_vs_sqlite3'])} |",
                  "",
                  f"Whole backup (median of {s['runs']}; the phases are each their own median):", "",
                  "| phase | seconds | share | MB/s of the database |",
                  "|---|---:|---:|---:|"]
        total = m["total_s"]
        for k in PHASES:
            v = m["phases_s"][k]
            lines.append(f"| {k} | {v:.2f} | {100 * v / total if total else 0:.0f}% | "
                         f"{f1(m['db_bytes'] / MB / v if v else None)} |")
        lines += [f"| **whole backup** (`in … s`) | {total:.1f} | 100% | {f1(m['total_mb_s'])} |",
                  f"| `onebox backup now` process, start to exit | {m['process_wall_s']:.2f} | | "
                  f"{f1(m['db_bytes'] / MB / m['process_wall_s'])} |",
                  "",
                  f"Database {m['db_bytes'] / MB:,.1f} MB → artifact {m['file_bytes'] / MB:,.1f} MB "
                  f"(zstd, {m['db_bytes'] / m['file_bytes']:.1f} : 1). The backup process used "
                  f"{m['process_cpu_s']:.2f} s of CPU (user + system) and at most "
                  f"{m['process_peak_rss_mb']:.0f} MB of RSS. The `in … s` total is printed with one "
                  f"decimal, the phases with two.", ""]
    ld = doc.get("load")
    if ld:
        lines += [f"## 2. Requests while a backup runs (wrk -t1 -c{b.CONNECTIONS}, {s['load_duration']} s; "
                  f"`onebox backup now` starts {BACKUP_START:.0f} s in)", "",
                  "| scenario | req/s | × baseline | req/s while the backup ran | 1-s minimum | stalled s "
                  "| p50 ms | p99 ms | errors | server CPU µs/req | WAL file MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for key in ("reads", "creates"):
            if key not in ld:
                continue
            sc = ld[key]
            bl, du = sc["baseline"], sc["during"]
            cpu = lambda r: "—" if r["cpu_us_per_req"] is None else f"{r['cpu_us_per_req']:.0f}"  # noqa: E731
            lines.append(f"| {sc['name']}, no backup | {bl['rps']:,.0f} | 1.00 | — | {bl['min_1s'] or 0:,} | "
                         f"{bl['stalled_s']} of {len(bl['window_secs'])} | "
                         f"{b.fmt_ms(bl['p50_ms'])} | {b.fmt_ms(bl['p99_ms'])} | {bl['errors']} | {cpu(bl)} | "
                         f"{bl['wal_max_mb']:.1f} |")
            win, low = du["rps_during_backup"], du["min_1s_during_backup"]
            win_s = "—" if win is None else f"{win:,.0f} ({f2(du['window_x_baseline'])} ×)"
            low_s = "—" if low is None else f"{low:,}"
            lines.append(f"| {sc['name']}, backup running | {du['rps']:,.0f} | {f2(du['x_baseline'])} | "
                         f"{win_s} | {low_s} | {du['stalled_s']} of {du['backup_window_seconds']} | "
                         f"{b.fmt_ms(du['p50_ms'])} | {b.fmt_ms(du['p99_ms'])} | {du['errors']} | {cpu(du)} | "
                         f"{du['wal_max_mb']:.1f} |")
        lines += ["",
                  "req/s and × baseline cover the whole run; *while the backup ran* counts only the whole "
                  "seconds between the start and the end of `backup now` (answers per wall-clock second, "
                  "counted in wrk's Lua); *stalled s*: those seconds with fewer than "
                  f"{STALL:.0%} of the baseline rate; *WAL file MB*: the largest size of onebox.db-wal seen "
                  "(polled every 0.2 s; SQLite reuses the file from its start, so it is a high-water mark).",
                  "", "The backup under that load:", "",
                  "| during | backup wall s | `in … s` | snapshot s | check s | pack s | store s | database MB | "
                  "snapshot MB/s | ended inside the run |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for key in ("reads", "creates"):
            if key not in ld:
                continue
            du = ld[key]["during"]
            bk = du["backup"]
            p = bk["phases"]
            lines.append(f"| {ld[key]['name']} | {bk['wall_s']:.2f} | {bk['total_s']:.1f} | {p['snapshot']:.2f} | "
                         f"{p['check']:.2f} | {p['pack']:.2f} | {p['store']:.2f} | {bk['db_bytes'] / MB:,.1f} | "
                         f"{f1(bk['db_bytes'] / MB / p['snapshot'] if p['snapshot'] else None)} | "
                         f"{'yes' if du['backup_inside_run'] else 'NO: the run ended first'} |")
        if sn:
            lines.append(f"| (no load, section 1) | {sn['median']['process_wall_s']:.2f} | {sn['median']['total_s']:.1f} | "
                         + " | ".join(f"{sn['median']['phases_s'][k]:.2f}" for k in PHASES)
                         + f" | {sn['median']['db_bytes'] / MB:,.1f} | {f1(sn['median']['snapshot_mb_s'])} | |")
        lines.append("")
    rs = doc.get("restore")
    if rs:
        lines += [f"## 3. Restore (`onebox restore latest`, server stopped, median of {s['runs']})", "",
                  "| restore | seconds | MB/s of the database | all runs, s |",
                  "|---|---:|---:|---:|",
                  f"| {rs['db_bytes'] / MB:,.1f} MB database from a {rs['file_bytes'] / MB:,.1f} MB artifact | "
                  f"{rs['median_s']:.2f} | {rs['mb_s']:,.1f} | {', '.join(f'{x:.2f}' for x in rs['all_s'])} |", ""]
    for note in doc["notes"]:
        lines.append(f"- note: {note}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description="onebox backup benchmark (see bench/README.md)")
    p.add_argument("--quick", action="store_true", help="a ~100 MB database instead of ~1 GB")
    p.add_argument("--rows", type=lambda x: int(x.replace("_", "")),
                   help=f"rows to seed (default: enough for ~1 GB, {BYTES_PER_ROW:.0f} bytes a row)")
    p.add_argument("--runs", type=int, default=3, help="runs of each copy and of restore, median (default 3)")
    p.add_argument("--load-duration", type=int,
                   help=f"seconds of each load run (default: 2 + 2.5 × the backup's time + 5, 10–{LOAD_MAX})")
    p.add_argument("--no-build", action="store_true", help="use the existing release binary")
    p.add_argument("--bin", type=Path, help="the onebox binary to measure (or ONEBOX_BIN); implies --no-build")
    o = p.parse_args()
    o.rows_given = o.rows is not None
    o.rows = o.rows or round((QUICK_BYTES if o.quick else DEFAULT_BYTES) / BYTES_PER_ROW)
    if o.rows < b.PAGE or o.runs < 1 or (o.load_duration is not None and not 5 <= o.load_duration <= 600):
        p.error("--rows must be ≥ 20, --runs ≥ 1, --load-duration 5–600")
    return o


def binary(opts) -> Path:
    """--bin, else ONEBOX_BIN, else the release binary under CARGO_TARGET_DIR (or target/)."""
    given = opts.bin or (Path(os.environ["ONEBOX_BIN"]) if os.environ.get("ONEBOX_BIN") else None)
    if given:
        return given.resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    if not opts.no_build:
        log("cargo build --release")
        try:
            subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True, timeout=3600,
                           stdout=sys.stderr)
        except subprocess.CalledProcessError:
            raise b.BenchError("cargo build --release failed (see above)") from None
        except subprocess.TimeoutExpired:
            raise b.BenchError("cargo build --release took over an hour") from None
    return target / "release" / "onebox"


def main() -> int:
    opts = parse_args()

    def on_signal(signum, _frame):
        log(f"got {signal.Signals(signum).name}: stopping everything this run started")
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = dt.datetime.now(dt.timezone.utc)
    doc: dict | None = None
    rc = 0
    try:
        b.check_tools()
        b.BIN = binary(opts)  # bench.Server and everything else here run b.BIN
        if not b.BIN.is_file():
            raise b.BenchError(f"{b.BIN} does not exist: build it, run without --no-build, or give --bin")
        est = opts.rows * BYTES_PER_ROW
        tmp_root = Path(tempfile.gettempdir())
        free = shutil.disk_usage(tmp_root).free
        need = max(DISK_FACTOR * est, 1e9)
        if free < need:
            raise b.BenchError(
                f"not enough disk: {free / 1e9:.1f} GB free in {tmp_root}, and a database of about "
                f"{est / 1e9:.2f} GB needs {need / 1e9:.1f} GB (the file, copies, snapshot, artifacts, "
                f"restores). Free some space, point TMPDIR at a bigger file system, or use --quick / --rows.")
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(tmp_root)], capture_output=True,
                            text=True, timeout=10).stdout.strip() if shutil.which("findmnt") else ""
        try:
            bin_path = str(b.BIN.relative_to(ROOT))
        except ValueError:
            bin_path = str(b.BIN)
        doc = {
            "started": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "command": "python3 bench/backup.py " + " ".join(sys.argv[1:]),
            "settings": {"rows": opts.rows, "runs": opts.runs, "quick": opts.quick,
                         "connections": b.CONNECTIONS, "threads": 1, "backup_starts_at_s": BACKUP_START},
            "machine": b.machine_facts(),
            "git": b.git_facts(),
            "binary": {"path": bin_path, "size_bytes": b.BIN.stat().st_size},
            "tmp_fs": f"{tmp_root} ({fs or 'unknown'}), {free / 1e9:.0f} GB free",
            "notes": [],
        }
        mem_avail = (doc["machine"].get("mem_available_mb") or 0) * 2**20
        if mem_avail and mem_avail < 3 * est:
            doc["notes"].append(f"only {mem_avail / 1e9:.1f} GB of memory available for a {est / 1e9:.1f} GB "
                                "database: the page cache may not hold it, copies may read from disk")
        if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
            doc["notes"].append("the machine was busy at start (see the load average): figures are noisy")

        tmp = b.make_tempdir("onebox-backup-bench-")
        prep = prepare(tmp, opts.rows)
        ob = Onebox(prep["data"])
        doc["db_mb"] = size(prep["db"]) / MB
        doc["seed_s"], doc["analyze_s"] = prep["seed_s"], prep["analyze_s"]
        if not opts.rows_given and not 0.8 * est <= size(prep["db"]) <= 1.25 * est:
            doc["notes"].append(f"the file is {size(prep['db']) / MB:,.0f} MB, not the ~{est / MB:,.0f} MB "
                                "aimed at: BYTES_PER_ROW in backup.py is out of date")

        log(f"1. snapshot throughput: {opts.runs} rounds")
        doc["snapshot"] = bench_snapshot(ob, prep["db"], tmp, opts.runs)

        whole = doc["snapshot"]["median"]["process_wall_s"]
        duration = opts.load_duration or int(min(LOAD_MAX, max(10, math.ceil(BACKUP_START + 2.5 * whole + 5))))
        doc["settings"]["load_duration"] = duration
        log(f"2. requests while a backup runs: {duration} s per run")
        srv = b.Server(prep["data"], JOBS_OFF)
        srv.start()
        doc["load"] = bench_load(ob, srv, tmp, prep["ids_file"], prep["token"], prep["admin_id"],
                                 duration, 1 if opts.quick else 2)
        for key in ("reads", "creates"):
            du = doc["load"][key]["during"]
            if not du["backup_inside_run"]:
                doc["notes"].append(f"{key}: the backup ended after the load run did; raise --load-duration")
            if du["backup_window_seconds"] == 0:
                doc["notes"].append(f"{key}: the backup ran for less than one whole second of the run, so "
                                    "there is no 'while the backup ran' rate")
        srv.stop()

        log(f"3. restore: {opts.runs} × `onebox restore latest`")
        manifests = sorted(ob.backups.glob("*.json"))
        manifest = json.loads(manifests[-1].read_text())
        runs = [ob.restore() for _ in range(opts.runs)]
        walls = [r["wall_s"] for r in runs]
        med = statistics.median(walls)
        doc["restore"] = {"id": manifest["id"], "db_bytes": manifest["db_bytes"],
                          "file_bytes": manifest["file_bytes"], "all_s": walls, "median_s": med,
                          "mb_s": manifest["db_bytes"] / MB / med,
                          "cpu_s": [r["cpu_s"] for r in runs], "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
                          "output": runs[-1]["stdout"]}
        log(f"  {', '.join(f'{w:.2f}' for w in walls)} s; median {med:.2f} s")
        # The restored database serves: a sampled id reads back.
        srv = b.Server(prep["data"], JOBS_OFF)
        srv.start()
        some_id = prep["ids_file"].read_text().split("\n", 1)[0]
        status, _ = b.call("GET", f"{srv.base}/api/collections/posts/records/{some_id}")
        if status != 200:
            doc["notes"].append(f"WRONG: after the restore, GET of a seeded record answered {status}")
        srv.stop()
    except b.BenchError as e:
        print(f"backup-bench: error: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        print("backup-bench: interrupted", file=sys.stderr)
        rc = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        b.cleanup()
    if doc and "snapshot" in doc:
        doc["complete"] = rc == 0
        text = report(doc)
        if rc:
            text = "**PARTIAL: the run stopped before the end.**\n\n" + text
        print(text, flush=True)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / ("backup-" + started.strftime("%Y%m%dT%H%M%SZ") + ".json")
        path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        log(f"results written to {path.relative_to(ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
