#!/usr/bin/env python3
"""onebox benchmark harness (issue 3): onebox beside its own ceiling and beside Datasette.

    python3 bench/bench.py [--quick] [--rows 10000,100000,1000000] [--duration S] [--runs N]
                           [--warmup S] [--no-build] [--no-datasette]

Python 3.11 standard library only, plus wrk and sqlite3 (Debian: apt-get install -y wrk sqlite3).
Everything it starts is killed on exit (also on Ctrl-C), its temp dirs are removed, it listens
on loopback only, picks free ports, and bounds every wait. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = ROOT / "target" / "release" / "onebox"
# Scenario (e0): the same creates through the service layer alone (bench/write_floor.rs).
FLOOR_BIN = ROOT / "target" / "release" / "examples" / "write_floor"
RESULTS = BENCH / "results"
DATASETTE_VENV = BENCH / ".venv-datasette"

EMAIL = "bench@example.com"
PASSWORD = "a-long-bench-passphrase"
CONNECTIONS = 32
WRK_TIMEOUT = "10s"  # per request: a slow peer shows as latency, not as socket errors
DEPTH = 1000  # (d): pages deep
WALK_SECONDS = 600  # a walk to page DEPTH that takes longer stops where it is (and says so)
PAGE = 20
ID_SAMPLE = 100_000  # ids the Lua scripts rotate over (spread over the whole table)
FILTER = 'kind="news" && year >= 2000'
SORT = "-published"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The collection the issue describes: text, number, bool, datetime, select and relation fields,
# one unique field (`slug`) and one indexed field (`kind`), plus the index an admin adds for the
# list this benchmark runs (kind = … sorted by -published), as for any SQL database: equality
# column first, then the sort column.
COLLECTION = {
    "name": "posts",
    "fields": [
        {"name": "title", "type": "text", "required": True, "max": 200},
        {"name": "slug", "type": "text", "unique": True},
        {"name": "year", "type": "number", "integer": True},
        {"name": "draft", "type": "bool"},
        {"name": "published", "type": "datetime"},
        {"name": "kind", "type": "select", "values": ["news", "blog", "note"], "indexed": True},
        {"name": "author", "type": "relation", "collection": "users"},
    ],
    "rules": {"list": "", "view": "", "create": "", "update": ""},
    "indexes": [{"name": "kind_published", "fields": ["kind", "published"]}],
}
# (e4) creates as a signed-in user under this create rule (an admin passes every rule, so the
# other scenarios check none): the rule holds for the written row, which the write reads back.
USER_EMAIL = "bench-user@example.com"
CREATE_RULE = "author = @me"
# (e3) indexes these too, then creates again: what two more indexes whose keys arrive in random
# order cost a write (the collection had them from the start until commit b466a3d).
MORE_INDEXED = ("year", "published")


def more_indexed_fields() -> dict:
    """The PATCH body that marks `MORE_INDEXED` as indexed (fields replace the whole list)."""
    return {"fields": [dict(f, indexed=True) if f["name"] in MORE_INDEXED else f
                       for f in COLLECTION["fields"]]}


class BenchError(Exception):
    """A failure with a message meant for the person running the harness."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Processes and temp dirs: everything started is registered and torn down in `cleanup`.

PROCS: list[subprocess.Popen] = []
TEMPDIRS: list[Path] = []


def spawn(cmd: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, **kw)
    PROCS.append(p)
    return p


def stop(p: subprocess.Popen | None, grace: float = 5.0) -> None:
    if p is None:
        return
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


def cleanup() -> None:
    for p in list(PROCS):
        stop(p, grace=3.0)
    for d in TEMPDIRS:
        shutil.rmtree(d, ignore_errors=True)
    TEMPDIRS.clear()


def make_tempdir(prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    TEMPDIRS.append(d)
    return d


def run(cmd: list[str], timeout: float, input: str | None = None, cwd: Path | None = None,
        env: dict | None = None) -> str:
    """Run a command to completion; its stdout, or a BenchError with its stderr."""
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                           cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout:.0f} s: {' '.join(cmd)[:200]}") from None
    if r.returncode != 0:
        raise BenchError(f"failed ({r.returncode}): {' '.join(cmd)[:200]}\n{r.stderr.strip()[-2000:]}")
    return r.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# /proc readings

def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def reset_hwm(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def machine_facts() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, v = line.split(":", 1)
            if k in ("MemTotal", "MemAvailable"):
                mem[k] = int(v.split()[0]) // 1024
    except OSError:
        pass

    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    wrk_v = None
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
        wrk_v = (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "mem_total_mb": mem.get("MemTotal"),
        "mem_available_mb": mem.get("MemAvailable"),
        "loadavg_at_start": os.getloadavg(),
        "wrk": wrk_v,
        "sqlite3": (version(["sqlite3", "--version"]) or "").split(" ")[0] or None,
        "python": platform.python_version(),
        "rustc": version(["rustc", "--version"]),
    }


def disk_write_mb_s(directory: Path, mib: int = 256) -> float:
    """Sequential write speed of the file system under `directory`, flushed to the device
    (what `dd bs=1M conv=fdatasync` reports). Creates write every page twice (WAL, then the
    database file), so a slow disk bounds them; measured in the same run because on a shared
    machine it varies more than anything else (279 MB/s to 1.8 GB/s on one VM in a day)."""
    path = directory / "disk-probe.tmp"
    block = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.monotonic()
        for _ in range(mib):
            os.write(fd, block)
        os.fdatasync(fd)
        seconds = time.monotonic() - t0
    finally:
        os.close(fd)
        path.unlink()
    return mib * 1.048576 / seconds


def git_facts() -> dict:
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"))}


# --------------------------------------------------------------------------------------------
# HTTP helpers (setup only; load comes from wrk)

def call(method: str, url: str, body=None, token: str | None = None, timeout: float = 30.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def page_status(url: str) -> int:
    """The status of a GET (for HTML pages, whose bodies are not JSON)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def row_count(records_url: str, token: str) -> int:
    """A collection's rows, as the API counts them."""
    body = expect(call("GET", records_url + "?limit=1&count=true", token=token, timeout=120), 200,
                  "GET records?count=true")
    return int(body["total"])


def expect(status_body, want: int, what: str):
    status, body = status_body
    if status != want:
        raise BenchError(f"{what}: expected {want}, got {status}: {str(body)[:500]}")
    return body


# --------------------------------------------------------------------------------------------
# The onebox server

class Server:
    """One `onebox serve --port 0` process; `start` returns the time from spawn to first 200."""

    def __init__(self, data: Path, env_extra: dict | None = None):
        self.data = data
        self.env = dict(os.environ, ONEBOX_LOG_LEVEL="warn", **(env_extra or {}))
        self.proc: subprocess.Popen | None = None
        self.base = ""
        self.n = 0

    def start(self, timeout: float = 30.0) -> float:
        self.n += 1
        out_path = self.data.parent / f"server-{self.n}.out"
        err_path = self.data.parent / f"server-{self.n}.err"
        self.err_path = err_path
        out = open(out_path, "wb")
        err = open(err_path, "wb")
        t0 = time.perf_counter()
        self.proc = spawn([str(BIN), "--data-dir", str(self.data), "serve", "--port", "0"],
                          stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env)
        out.close()
        err.close()
        port = None
        while True:
            if time.perf_counter() - t0 > timeout:
                raise BenchError(f"onebox did not answer 200 on /healthz within {timeout:.0f} s; "
                                 f"stderr: {self.stderr_tail()}")
            if self.proc.poll() is not None:
                raise BenchError(f"onebox exited with {self.proc.returncode} while starting; "
                                 f"stderr: {self.stderr_tail()}")
            if port is None:
                m = re.search(rb"onebox listening on http://127\.0\.0\.1:(\d+)", out_path.read_bytes())
                if not m:
                    time.sleep(0.0005)
                    continue
                port = int(m.group(1))
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    elapsed = time.perf_counter() - t0
                    self.base = f"http://127.0.0.1:{port}"
                    return elapsed
            except OSError:
                pass
            time.sleep(0.0005)

    def stderr_tail(self) -> str:
        try:
            return self.err_path.read_text(errors="replace").strip()[-1500:] or "(empty)"
        except OSError:
            return "(none)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        stop(self.proc, grace=10.0)
        self.proc = None


# --------------------------------------------------------------------------------------------
# Seeding

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_sql(t: str) -> str:
    """SQL for a ULID whose 48-bit time part is the integer expression `t` (milliseconds):
    strictly increasing `t` gives ids that sort in insertion order; 80 random bits follow."""
    parts = [f"substr('{CROCKFORD}', ((({t}) >> {5 * (9 - k)}) & 31) + 1, 1)" for k in range(10)]
    parts += [f"substr('{CROCKFORD}', (random() & 31) + 1, 1)"] * 16
    return " || ".join(parts)


def seed(db: Path, rows: int, admin_id: str) -> float:
    base_ms = int(time.time() * 1000) - rows - 3_600_000  # all seeded ids precede new ones
    admin_sql = admin_id.replace("'", "''")
    sql = f"""
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO posts (id, created, updated, title, slug, year, draft, published, kind, author)
SELECT {ulid_sql('t')}, ts, ts,
       'Post number ' || i || ': notes on ' ||
         CASE i % 5 WHEN 0 THEN 'storage engines' WHEN 1 THEN 'small servers' WHEN 2 THEN 'query plans'
                    WHEN 3 THEN 'group commit' ELSE 'keyset paging' END,
       'post-' || i,
       y,
       (i % 7 = 0),
       strftime('%Y-%m-%dT%H:%M:%fZ', printf('%04d-01-01', y), '+' || ((i * 104729) % 31536000) || ' seconds'),
       CASE ((i * 2654435761) >> 13) % 3 WHEN 0 THEN 'news' WHEN 1 THEN 'blog' ELSE 'note' END,
       CASE WHEN i % 10 = 0 THEN '{admin_sql}' END
FROM (SELECT i, {base_ms} + i AS t,
             strftime('%Y-%m-%dT%H:%M:%fZ', ({base_ms} + i) / 1000.0, 'unixepoch') AS ts,
             1990 + ((i * 7919) % 35) AS y
      FROM n);
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
"""
    t0 = time.perf_counter()
    run(["sqlite3", "-bail", str(db)], timeout=3600, input=sql)
    return time.perf_counter() - t0


def sample_ids(db: Path, path: Path, n: int) -> list[str]:
    out = run(["sqlite3", str(db), f"SELECT id FROM posts ORDER BY random() LIMIT {n};"], timeout=600)
    ids = out.split()
    if not ids or any(len(i) != 26 for i in ids):
        raise BenchError(f"seeded ids look wrong: {ids[:3]}")
    path.write_text("\n".join(ids) + "\n")
    return ids


# --------------------------------------------------------------------------------------------
# wrk and its Lua scripts

LUA_IDS = r"""
-- GET prefix .. id .. suffix for ids read from a file (one a line), picked at random.
-- Requests are formatted once in init so request() costs wrk almost nothing.
local reqs, n = {}, 0
function init(args)
  for id in io.lines(args[1]) do
    n = n + 1
    reqs[n] = wrk.format("GET", args[2] .. id .. (args[3] or ""))
  end
end
function request() return reqs[math.random(n)] end
"""

LUA_CREATE = r"""
-- POST a new record with a unique slug (args: token, slug prefix, author id, and how often
-- a record names that author: every 10th unless a 4th argument says otherwise).
local token, prefix, admin, every, counter = nil, nil, nil, 10, 0
local kinds = {"news", "blog", "note"}
function init(args)
  token, prefix, admin = args[1], args[2], args[3]
  every = tonumber(args[4]) or 10
end
function request()
  counter = counter + 1
  local year = math.random(1990, 2024)
  local author = (counter % every == 0) and string.format(',"author":"%s"', admin) or ""
  local body = string.format(
    '{"title":"Bench post %d","slug":"%s-%d","year":%d,"draft":%s,' ..
    '"published":"%04d-%02d-%02dT12:00:00.000Z","kind":"%s"%s}',
    counter, prefix, counter, year, (counter % 7 == 0) and "true" or "false",
    year, math.random(1, 12), math.random(1, 28), kinds[math.random(3)], author)
  return wrk.format("POST", "/api/collections/posts/records",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
"""

LUA_UPDATE = r"""
-- PATCH random seeded ids (args: ids file, token); requests formatted once in init.
local reqs, n = {}, 0
function init(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[2]}
  for id in io.lines(args[1]) do
    n = n + 1
    local body = string.format('{"title":"Updated post %d","year":%d,"draft":%s}',
      n, 1990 + n % 35, (n % 2 == 0) and "true" or "false")
    reqs[n] = wrk.format("PATCH", "/api/collections/posts/records/" .. id, headers, body)
  end
end
function request() return reqs[math.random(n)] end
"""

LUA_MIXED = r"""
-- 90% point reads of random seeded ids, 10% creates (args: ids file, token, slug prefix, admin).
-- No response() hook: wrk would build a Lua table of every answer's headers for it, about
-- 10 µs of wrk's CPU per request on the cores the server uses. The harness counts the writes
-- as the rows the run added instead (`Measure.scenario`'s `rows_fn`).
local reads_pool, n = {}, 0
local token, prefix, admin, counter = nil, nil, nil, 0
local kinds = {"news", "blog", "note"}
function init(args)
  for id in io.lines(args[1]) do
    n = n + 1
    reads_pool[n] = wrk.format("GET", "/api/collections/posts/records/" .. id)
  end
  token, prefix, admin = args[2], args[3], args[4]
end
function request()
  counter = counter + 1
  if counter % 10 ~= 0 then return reads_pool[math.random(n)] end
  local year = math.random(1990, 2024)
  local author = (counter % 100 == 0) and string.format(',"author":"%s"', admin) or ""
  local body = string.format(
    '{"title":"Mixed post %d","slug":"%s-%d","year":%d,"draft":false,' ..
    '"published":"%04d-06-01T12:00:00.000Z","kind":"%s"%s}',
    counter, prefix, counter, year, year, kinds[math.random(3)], author)
  return wrk.format("POST", "/api/collections/posts/records",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
"""

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_latency(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise BenchError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise BenchError(f"wrk output without Requests/sec:\n{out[-1500:]}")
    res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    res["requests"] = int(m.group(1)) if m else 0
    res["seconds"] = float(m.group(2)) * UNITS_MS[m.group(3)] / 1000 if m else None
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        res[key] = parse_latency(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock = sum(int(x) for x in m.groups()) if m else 0
    res["non_2xx"] = non2xx
    res["socket_errors"] = sock
    res["errors"] = non2xx + sock
    return res


def mix(r: dict, rows_added: int) -> dict:
    """(h)'s split of one wrk run: its writes are the rows it added (every create adds one,
    and a failed one shows in wrk's non-2xx count), its reads the rest of its answers. The
    up to `CONNECTIONS` creates still in flight when wrk stops count as writes: a 0.3% error
    at 10,000 writes."""
    secs = r["seconds"] or 1
    reads = max(r["requests"] - rows_added, 0)
    return {"reads": reads, "writes": rows_added,
            "reads_per_s": reads / secs, "writes_per_s": rows_added / secs}


def wrk(url: str, duration: int, script: Path | None = None, args: list[str] = (),
        latency: bool = True) -> tuple[str, dict]:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", WRK_TIMEOUT]
    if latency:
        cmd.append("--latency")
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    out = run(cmd, timeout=duration + 60)
    return out, parse_wrk(out)


def median_run(runs: list[dict]) -> dict:
    """The middle run by req/s (the lower one of two), with the errors of all runs and every
    run's rate."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    med = dict(ordered[(len(ordered) - 1) // 2])
    med["errors"] = sum(r["errors"] for r in runs)
    med["rps_all"] = [r["rps"] for r in runs]
    return med


class Measure:
    """Runs scenarios against one server process (pid) and keeps the results."""

    def __init__(self, opts, tag: str):
        self.opts = opts
        self.tag = tag
        self.calls = 0
        self.hwm_ok = True

    def unique(self) -> str:
        self.calls += 1
        return f"b{self.tag}-{self.calls}"

    def scenario(self, key: str, name: str, pid: int, url: str, script: Path | None = None,
                 args_fn=lambda: [], rows_fn=None) -> dict:
        """Warm up once, then `runs` measured runs; the median run (by req/s) is reported,
        with the peak RSS over all runs. With `rows_fn` (the collection's row count), each
        run's reads and writes are split by `mix`."""
        log(f"  {name}: warm-up {self.opts.warmup} s, {self.opts.runs} × {self.opts.duration} s")
        wrk(url, self.opts.warmup, script, args_fn(), latency=False)
        runs = []
        for _ in range(self.opts.runs):
            self.hwm_ok &= reset_hwm(pid)
            rows0 = rows_fn() if rows_fn else 0
            c0 = cpu_ticks(pid)
            out, r = wrk(url, self.opts.duration, script, args_fn())
            c1 = cpu_ticks(pid)
            if rows_fn:
                r["mix"] = mix(r, rows_fn() - rows0)
            hwm = proc_status_kb(pid, "VmHWM")
            r["cpu_us_per_req"] = ((c1 - c0) / CLK_TCK * 1e6 / r["requests"]) if r["requests"] else None
            r["peak_rss_mb"] = hwm / 1024 if hwm else None
            r["wrk_output"] = out
            runs.append(r)
        med = median_run(runs)
        med["peak_rss_mb"] = max((r["peak_rss_mb"] or 0) for r in runs) or None
        med.pop("wrk_output")
        res = {"key": key, "name": name, "url": url, **med, "runs": runs}
        extra = ""
        if "mix" in med:
            extra = f" (reads {med['mix']['reads_per_s']:,.0f}/s, writes {med['mix']['writes_per_s']:,.0f}/s)"
        log(f"    {med['rps']:,.0f} req/s, p50 {fmt_ms(med['p50_ms'])} ms, p99 {fmt_ms(med['p99_ms'])} ms,"
            f" errors {med['errors']}{extra}")
        return res


def write_floor(data: Path, admin_id: str, m: Measure) -> dict:
    """(e0): `bench/write_floor.rs` creates records like (e)'s script from 32 tasks straight
    through onebox's service layer (no HTTP), on the same data dir with the server stopped.
    Warm-up once, then `runs` runs; the median run by creates/s, like `Measure.scenario`."""
    name = "(e0) create, service layer alone (no HTTP)"
    log(f"  {name}: warm-up {m.opts.warmup} s, {m.opts.runs} × {m.opts.duration} s")

    def once(seconds: int) -> dict:
        out = run([str(FLOOR_BIN), str(data), COLLECTION["name"], admin_id, m.unique(), str(seconds)],
                  timeout=seconds + 120, env=dict(os.environ, ONEBOX_LOG_LEVEL="warn"))
        r = json.loads(out.strip().splitlines()[-1])
        r["requests"], r["errors"] = r.pop("creates"), r.pop("failed")
        return r

    once(m.opts.warmup)
    runs = [once(m.opts.duration) for _ in range(m.opts.runs)]
    med = median_run(runs)
    log(f"    {med['rps']:,.0f} creates/s, p50 {fmt_ms(med['p50_ms'])} ms, p99 {fmt_ms(med['p99_ms'])} ms,"
        f" {med['cpu_us_per_req']:.0f} µs CPU each, errors {med['errors']}")
    return {"key": "e0", "name": name, **med, "runs": runs}


# --------------------------------------------------------------------------------------------
# Paging walks for (d)

def walk_onebox(base: str, depth: int) -> tuple[int, str | None, str]:
    """Follow `next` from the first page of the (c) list. Returns (D, cursor for page D, first id
    on page D) where D = min(depth, last full page)."""
    q = {"filter": FILTER, "sort": SORT, "limit": str(PAGE)}
    cursor = None
    page = 1
    deadline = time.monotonic() + WALK_SECONDS
    while True:
        qs = dict(q, **({"after": cursor} if cursor else {}))
        body = expect(call("GET", f"{base}/api/collections/posts/records?{urllib.parse.urlencode(qs)}"),
                      200, "list (walking pages by cursor)")
        items, nxt = body["items"], body.get("next")
        if len(items) < PAGE:  # a partial last page: the last full page is the one before
            if page == 1:
                raise BenchError("the (c) list has less than one full page")
            return page - 1, prev_cursor, prev_first
        if page == depth or not nxt or time.monotonic() > deadline:
            return page, cursor, items[0]["id"]
        prev_cursor, prev_first = cursor, items[0]["id"]
        cursor = nxt
        page += 1


def walk_datasette(base: str, path_qs: str, depth: int) -> tuple[int, str | None, object]:
    token = None
    page = 1
    deadline = time.monotonic() + WALK_SECONDS
    while True:
        url = f"{base}{path_qs}" + (f"&_next={urllib.parse.quote(token)}" if token else "")
        body = expect(call("GET", url, timeout=60), 200, "Datasette list (walking _next)")
        rows, nxt = body["rows"], body.get("next")
        if len(rows) < PAGE:
            if page == 1:
                raise BenchError("the Datasette list has less than one full page")
            return page - 1, prev_token, prev_first
        if page == depth or not nxt or time.monotonic() > deadline:
            return page, token, rows[0]
        prev_token, prev_first = token, rows[0]
        token = str(nxt)
        page += 1


# --------------------------------------------------------------------------------------------
# Datasette

def datasette_bin() -> Path | None:
    exe = DATASETTE_VENV / "bin" / "datasette"
    if exe.exists():
        return exe
    log(f"installing Datasette into {DATASETTE_VENV} (pip install datasette)")
    try:
        run([sys.executable, "-m", "venv", str(DATASETTE_VENV)], timeout=300)
        run([str(DATASETTE_VENV / "bin" / "pip"), "install", "-q", "datasette"], timeout=900)
    except BenchError as e:
        banner(f"DATASETTE COULD NOT BE INSTALLED — peer columns will be empty.\n{e}")
        shutil.rmtree(DATASETTE_VENV, ignore_errors=True)
        return None
    return exe if exe.exists() else None


def banner(msg: str) -> None:
    line = "!" * 78
    print(f"\n{line}\n{msg}\n{line}\n", file=sys.stderr, flush=True)


def bench_datasette(exe: Path, db_copy: Path, ids_file: Path, depth: int, m: Measure) -> dict:
    port = free_port()
    err = open(db_copy.parent / "datasette.err", "wb")
    proc = spawn([str(exe), "serve", "-i", str(db_copy), "-h", "127.0.0.1", "--port", str(port),
                  "--setting", "suggest_facets", "off"],
                 stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    err.close()
    base = f"http://127.0.0.1:{port}"
    out: dict = {"version": None, "scenarios": {}}
    try:
        t0 = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise BenchError(f"Datasette exited: {(db_copy.parent / 'datasette.err').read_text()[-1500:]}")
            if time.perf_counter() - t0 > 180:
                raise BenchError("Datasette did not answer within 180 s")
            try:
                status, body = call("GET", f"{base}/-/versions.json", timeout=5)
                if status == 200:
                    out["version"] = body.get("datasette", {}).get("version")
                    break
            except OSError:
                pass
            time.sleep(0.05)
        db = db_copy.stem
        some_id = ids_file.read_text().split("\n", 1)[0]
        row = expect(call("GET", f"{base}/{db}/posts/{some_id}.json"), 200, "Datasette row")
        if len(row.get("rows", [])) != 1:
            raise BenchError(f"Datasette row JSON unexpected: {str(row)[:300]}")
        list_qs = f"/{db}/posts.json?kind=news&year__gte=2000&_sort_desc=published&_size={PAGE}"
        expect(call("GET", base + list_qs, timeout=60), 200, "Datasette list")
        d, token, _ = walk_datasette(base, list_qs, depth)
        deep = base + list_qs + (f"&_next={urllib.parse.quote(token)}" if token else "")
        sc = out["scenarios"]
        sc["b"] = m.scenario("b", "(b) point read — Datasette", proc.pid, base + "/",
                             m.ids_script, lambda: [str(ids_file), f"/{db}/posts/", ".json"])
        sc["c"] = m.scenario("c", "(c) list 20 — Datasette", proc.pid, base + list_qs)
        sc["d_cursor"] = m.scenario("d_cursor", f"(d) page {d} by _next — Datasette", proc.pid, deep)
        sc["d_cursor"]["depth"] = d
    finally:
        stop(proc)
    return out


# --------------------------------------------------------------------------------------------
# One row count

def bench_rows(rows: int, opts, ds_exe: Path | None, tag: str) -> dict:
    log(f"=== {rows:,} rows ===")
    tmp = make_tempdir(f"onebox-bench-{rows}-")
    data = tmp / "data"
    data.mkdir()
    res: dict = {"rows": rows, "scenarios": {}, "notes": []}

    run([str(BIN), "--data-dir", str(data), "admin", "create", "--email", EMAIL, "--password-stdin"],
        timeout=60, input=PASSWORD + "\n")
    token = run([str(BIN), "--data-dir", str(data), "token", "create", "--email", EMAIL,
                 "--name", "bench"], timeout=60).strip().splitlines()[-1].strip()
    if not token.startswith("obx_"):
        raise BenchError(f"token create printed something unexpected: {token[:40]!r}")

    srv = Server(data)
    srv.start()
    me = expect(call("GET", f"{srv.base}/api/auth/me", token=token), 200, "GET /api/auth/me")
    admin_id = me.get("id") or (me.get("user") or {}).get("id")
    if not admin_id:
        raise BenchError(f"/api/auth/me has no id: {str(me)[:300]}")
    expect(call("POST", f"{srv.base}/api/collections", COLLECTION, token=token), 201,
           "POST /api/collections")
    srv.stop()

    log(f"seeding {rows:,} rows with sqlite3")
    res["seed_seconds"] = seed(data / "onebox.db", rows, admin_id)
    log(f"  seeded in {res['seed_seconds']:.1f} s")
    ids_file = tmp / "ids.txt"
    ids = sample_ids(data / "onebox.db", ids_file, min(rows, ID_SAMPLE))
    db_copy = None
    if ds_exe:
        ds_dir = tmp / "datasette"
        ds_dir.mkdir()
        db_copy = ds_dir / "onebox.db"
        shutil.copyfile(data / "onebox.db", db_copy)
        run(["sqlite3", str(db_copy), "PRAGMA journal_mode=DELETE;"], timeout=600)
    res["db_size_mb"] = (data / "onebox.db").stat().st_size / 2**20

    # Cold start to the first 200, median of 3 starts; the last one stays up.
    starts = []
    for i in range(3):
        if i:
            srv.stop()
        starts.append(srv.start() * 1000)
    res["cold_start_ms"] = statistics.median(starts)
    res["cold_start_all_ms"] = starts
    time.sleep(0.5)
    res["idle_rss_mb"] = (proc_status_kb(srv.pid, "VmRSS") or 0) / 1024
    log(f"  cold start {res['cold_start_ms']:.1f} ms (of {', '.join(f'{s:.1f}' for s in starts)}),"
        f" idle RSS {res['idle_rss_mb']:.1f} MB")

    m = Measure(opts, tag)
    m.ids_script = tmp / "ids.lua"
    m.ids_script.write_text(LUA_IDS)
    create_lua = tmp / "create.lua"
    create_lua.write_text(LUA_CREATE)
    update_lua = tmp / "update.lua"
    update_lua.write_text(LUA_UPDATE)
    mixed_lua = tmp / "mixed.lua"
    mixed_lua.write_text(LUA_MIXED)

    # Sanity: every request shape answers 2xx before it is loaded.
    b = srv.base
    rec_path = "/api/collections/posts/records"
    expect(call("GET", f"{b}{rec_path}/{ids[0]}"), 200, "point read")
    list_qs = f"{rec_path}?" + urllib.parse.urlencode({"filter": FILTER, "sort": SORT, "limit": PAGE},
                                                       quote_via=urllib.parse.quote)
    first = expect(call("GET", b + list_qs), 200, "filtered list")
    if len(first["items"]) != PAGE:
        raise BenchError(f"filtered list returned {len(first['items'])} items")
    expect(call("PATCH", f"{b}{rec_path}/{ids[0]}", {"year": 2001}, token=token), 200, "update")

    depth, cursor, first_id = walk_onebox(b, DEPTH)
    res["depth"] = depth
    if depth < DEPTH:
        res["notes"].append(f"(d) at {rows:,} rows the walk reached only page {depth} (the last full page, or "
                            f"{WALK_SECONDS} s ran out): measured page {depth}, not {DEPTH}")
    by_cursor = b + list_qs + (f"&after={urllib.parse.quote(cursor)}" if cursor else "")
    by_page = b + list_qs + f"&page={depth}"
    page_body = expect(call("GET", by_page), 200, "list by page")
    if not page_body["items"] or page_body["items"][0]["id"] != first_id:
        res["notes"].append(f"WRONG: page={depth} and the cursor walk disagree on the first id of that page")

    sc = res["scenarios"]
    pid = srv.pid
    sc["a"] = m.scenario("a", "(a) ceiling GET /healthz", pid, b + "/healthz")
    sc["b"] = m.scenario("b", "(b) point read by id", pid, b + "/", m.ids_script,
                         lambda: [str(ids_file), rec_path + "/"])
    sc["c"] = m.scenario("c", "(c) list 20, filter + sort, page 1", pid, b + list_qs)
    sc["d_cursor"] = m.scenario("d_cursor", f"(d) page {depth} by cursor", pid, by_cursor)
    sc["d_page"] = m.scenario("d_page", f"(d) page {depth} by page=", pid, by_page)
    # (g) the site's collection page for the same query: first page and the deep cursor.
    html_qs = "/c/posts?" + urllib.parse.urlencode({"filter": FILTER, "sort": SORT, "limit": PAGE},
                                                   quote_via=urllib.parse.quote)
    if page_status(b + html_qs) == 200:
        sc["g"] = m.scenario("g", "(g) HTML collection page, page 1", pid, b + html_qs)
        deep = b + html_qs + (f"&after={urllib.parse.quote(cursor)}" if cursor else "")
        if page_status(deep) == 200:
            sc["g_deep"] = m.scenario("g_deep", f"(g) HTML collection page {depth} by cursor", pid, deep)
    else:
        res["notes"].append("(g) skipped: GET /c/posts did not answer 200 (no site in this build)")
    res["disk_mb_s"] = disk_write_mb_s(tmp)
    log(f"  disk: {res['disk_mb_s']:.0f} MB/s sequential writes with fdatasync")
    sc["e"] = m.scenario("e", "(e) create", pid, b + rec_path, create_lua,
                         lambda: [token, m.unique(), admin_id])
    sc["f"] = m.scenario("f", "(f) update", pid, b + rec_path, update_lua,
                         lambda: [str(ids_file), token])
    sc["h"] = m.scenario("h", "(h) mixed 90/10 read/write", pid, b + rec_path, mixed_lua,
                         lambda: [str(ids_file), token, m.unique(), admin_id],
                         rows_fn=lambda: row_count(b + rec_path, token))
    # (e4) the same creates by a user whom the create rule restricts; every one names them.
    user = expect(call("POST", f"{b}/api/users", {"email": USER_EMAIL, "password": PASSWORD,
                                                  "role": "user"}, token=token), 201, "POST /api/users")
    login = expect(call("POST", f"{b}/api/auth/login", {"email": USER_EMAIL, "password": PASSWORD}),
                   200, "POST /api/auth/login")
    expect(call("PATCH", f"{b}/api/collections/posts",
                {"rules": dict(COLLECTION["rules"], create=CREATE_RULE)}, token=token),
           200, "PATCH /api/collections/posts (create rule)")
    refused = call("POST", b + rec_path, {"title": "not mine", "author": admin_id}, token=login["token"])
    if refused[0] != 403:
        raise BenchError(f"(e4): a create naming another author answered {refused[0]}, not 403")
    sc["e4"] = m.scenario("e4", f"(e4) create as a user, rule {CREATE_RULE}", pid, b + rec_path,
                          create_lua, lambda: [login["token"], m.unique(), user["id"], "1"])
    # The rest create as before: (e0) runs anonymously, which `author = @me` would refuse.
    expect(call("PATCH", f"{b}/api/collections/posts", {"rules": COLLECTION["rules"]}, token=token),
           200, "PATCH /api/collections/posts (rules as before)")
    log(f"  server stderr (warn and above): {srv.stderr_tail()[-300:]}")
    srv.stop()

    # (e0) the write floor: the same creates through the service layer, with no HTTP.
    if FLOOR_BIN.exists():
        sc["e0"] = write_floor(data, admin_id, m)
    else:
        res["notes"].append(f"(e0) skipped: {FLOOR_BIN} does not exist (run without --no-build)")

    # (e2) durability = "full": same data, a server restarted with ONEBOX_DURABILITY=full.
    env_full = dict(os.environ, ONEBOX_DURABILITY="full")
    conf = run([str(BIN), "--data-dir", str(data), "config", "check"], timeout=60, env=env_full)
    if not re.search(r'durability\s*=\s*"full"', conf):
        res["notes"].append("WRONG: ONEBOX_DURABILITY=full not shown by `config check`")
    srv_full = Server(data, {"ONEBOX_DURABILITY": "full"})
    srv_full.start()
    sc["e2"] = m.scenario("e2", '(e) create, durability = "full"', srv_full.pid,
                          srv_full.base + rec_path, create_lua, lambda: [token, m.unique(), admin_id])
    srv_full.stop()

    # (e3) the same creates with `MORE_INDEXED` indexed as well (built on the grown table).
    srv = Server(data)
    srv.start()
    log(f"  indexing {', '.join(MORE_INDEXED)}")
    expect(call("PATCH", f"{srv.base}/api/collections/posts", more_indexed_fields(), token=token,
                timeout=600), 200, "PATCH /api/collections/posts (more indexes)")
    sc["e3"] = m.scenario("e3", f"(e3) create, {' and '.join(MORE_INDEXED)} indexed too", srv.pid,
                          srv.base + rec_path, create_lua, lambda: [token, m.unique(), admin_id])
    srv.stop()

    ceiling = sc["a"]["rps"]
    for k, s in sc.items():
        # (e0) ran without the server, so the server's ceiling is no yardstick for it.
        s["x_ceiling"] = s["rps"] / ceiling if ceiling and k != "e0" else None
    if "mix" in sc["h"]:
        sc["h"]["reads_x_b"] = sc["h"]["mix"]["reads_per_s"] / sc["b"]["rps"] if sc["b"]["rps"] else None

    if ds_exe and db_copy:
        try:
            res["datasette"] = bench_datasette(ds_exe, db_copy, ids_file, depth, m)
            for k, s in res["datasette"]["scenarios"].items():
                if s["rps"]:
                    sc[k]["x_datasette"] = sc[k]["rps"] / s["rps"]
        except BenchError as e:
            banner(f"DATASETTE RUN FAILED at {rows:,} rows — peer columns empty.\n{e}")
            res["datasette"] = {"error": str(e)}
    else:
        res["datasette"] = {"error": "not installed"}

    res["hwm_reset_ok"] = m.hwm_ok
    shutil.rmtree(tmp, ignore_errors=True)
    TEMPDIRS.remove(tmp)
    return res


# --------------------------------------------------------------------------------------------
# Reporting

def fmt_ms(v) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def fmt_x(v) -> str:
    return "—" if v is None else f"{v:.2f}"


SKIPPED = [("i", "(i) reads while a backup runs", "measured by bench/backup.py (section 2)")]


def table(res: dict) -> str:
    head = ("| scenario | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MB | × ceiling | × Datasette | errors |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]

    def row(s, name=None, x_ceiling=True, x_ds=True):
        cpu = s.get("cpu_us_per_req")
        rss = s.get("peak_rss_mb")
        lines.append(
            f"| {name or s['name']} | {s['rps']:,.0f} | {fmt_ms(s.get('p50_ms'))} | {fmt_ms(s.get('p99_ms'))} | "
            f"{'—' if cpu is None else f'{cpu:.0f}'} | {'—' if rss is None else f'{rss:.1f}'} | "
            f"{fmt_x(s.get('x_ceiling')) if x_ceiling else '—'} | {fmt_x(s.get('x_datasette')) if x_ds else '—'} | "
            f"{s['errors']} |")

    sc = res["scenarios"]
    for k in ("a", "b", "c", "d_cursor", "d_page", "g", "g_deep", "e", "e0", "e2", "e3", "e4", "f"):
        if k in sc:
            row(sc[k])
    h = sc["h"]
    row(h, "(h) mixed 90/10, all requests")
    if "mix" in h:
        mix = h["mix"]
        ceiling = sc["a"]["rps"]
        lines.append(f"| (h) — reads | {mix['reads_per_s']:,.0f} | | | | | {fmt_x(mix['reads_per_s'] / ceiling)} | | |")
        lines.append(f"| (h) — writes | {mix['writes_per_s']:,.0f} | | | | | {fmt_x(mix['writes_per_s'] / ceiling)} | | |")
    for _, name, why in SKIPPED:
        lines.append(f"| {name} | {why} | | | | | | | |")
    ds = res.get("datasette", {})
    for k in ("b", "c", "d_cursor"):
        s = ds.get("scenarios", {}).get(k)
        if s:
            row(s, x_ceiling=False, x_ds=False)
    if ds.get("error"):
        lines.append(f"| Datasette | not measured: {ds['error'][:80]} | | | | | | | |")
    return "\n".join(lines)


def targets(results: list[dict]) -> list[dict]:
    out = []

    def t(rows, target, ok, value, note=""):
        out.append({"rows": rows, "target": target, "pass": ok, "value": value, "note": note})

    for res in results:
        n = res["rows"]
        sc = res["scenarios"]
        ceil = sc["a"]["rps"]
        ds = res.get("datasette", {}).get("scenarios", {})

        def clean(s):  # a scenario with failed requests cannot pass a target
            return s["errors"] == 0

        def vs_datasette(n, key, target):
            if key not in ds:
                t(n, target, None, "—", "Datasette not measured")
            elif not ds[key]["rps"]:
                # Every request to Datasette timed out: no finite ratio, and onebox served.
                t(n, target, clean(sc[key]) and sc[key]["rps"] > 0, "∞ ×",
                  "Datasette answered no request within wrk's timeout")
            else:
                x = sc[key].get("x_datasette", 0)
                t(n, target, clean(sc[key]) and x >= 20, f"{x:.1f} ×")

        b, c, dc = sc["b"], sc["c"], sc["d_cursor"]
        t(n, "(b) point read ≥ 0.6 × ceiling", clean(b) and b["rps"] >= 0.6 * ceil, f"{b['rps'] / ceil:.2f} ×")
        t(n, "(b) point read p99 ≤ 5 ms", clean(b) and b["p99_ms"] <= 5, f"{b['p99_ms']:.2f} ms")
        vs_datasette(n, "b", "(b) point read ≥ 20 × Datasette")
        t(n, "(c) filtered list ≥ 0.35 × ceiling", clean(c) and c["rps"] >= 0.35 * ceil, f"{c['rps'] / ceil:.2f} ×")
        vs_datasette(n, "c", "(c) filtered list ≥ 20 × Datasette")
        note = "" if res["depth"] == DEPTH else f"page {res['depth']}: fewer than {DEPTH} pages at this size"
        t(n, "(d) cursor page 1000 within 20% of (c)", clean(dc) and dc["rps"] >= 0.8 * c["rps"],
          f"{dc['rps'] / c['rps']:.2f} × (c)", note)
        e, e2 = sc["e"], sc["e2"]
        context = [f"disk {res['disk_mb_s']:.0f} MB/s in this run"] if "disk_mb_s" in res else []
        if "e0" in sc:
            context.append(f"(e0) without HTTP: {sc['e0']['rps']:,.0f}/s")
        t(n, "(e) create ≥ 20,000/s", clean(e) and e["rps"] >= 20_000, f"{e['rps']:,.0f}/s", "; ".join(context))
        t(n, "(e) create p99 ≤ 20 ms", clean(e) and e["p99_ms"] <= 20, f"{e['p99_ms']:.1f} ms")
        t(n, '(e) create, durability "full" ≥ 5,000/s', clean(e2) and e2["rps"] >= 5_000, f"{e2['rps']:,.0f}/s")
        h = sc["h"]
        if "mix" in h:
            mix = h["mix"]
            t(n, "(h) mixed: reads ≥ 0.5 × (b)", clean(h) and mix["reads_per_s"] >= 0.5 * b["rps"],
              f"{mix['reads_per_s'] / b['rps']:.2f} × (b)")
            t(n, "(h) mixed: writes ≥ 2,000/s", clean(h) and mix["writes_per_s"] >= 2_000, f"{mix['writes_per_s']:,.0f}/s")
        t(n, "idle RSS ≤ 20 MB", res["idle_rss_mb"] <= 20, f"{res['idle_rss_mb']:.1f} MB")
        peak = max((sc[k].get("peak_rss_mb") or 0) for k in ("b", "c", "d_cursor", "d_page", "e", "e2", "e3", "e4", "f", "h") if k in sc)
        t(n, "peak RSS under (b)–(h) ≤ 64 MB", peak <= 64, f"{peak:.1f} MB")
        t(n, "cold start to first 200 ≤ 50 ms (target at 1M rows)", res["cold_start_ms"] <= 50,
          f"{res['cold_start_ms']:.1f} ms", "" if n >= 1_000_000 else "measured below 1M rows")

    if len(results) >= 2:
        lo, hi = min(results, key=lambda r: r["rows"]), max(results, key=lambda r: r["rows"])
        a, z = lo["scenarios"]["d_cursor"]["rps"], hi["scenarios"]["d_cursor"]["rps"]
        t(f"{lo['rows']:,}→{hi['rows']:,}", "(d) cursor flat across sizes (within 20%)", z >= 0.8 * a,
          f"{z / a:.2f} ×", "" if lo["depth"] == hi["depth"] else "depths differ")
    else:
        t("—", "(d) cursor flat from 10k to 1M rows", None, "—", "needs at least two row counts")
    return out


def report(doc: dict) -> str:
    mf = doc["machine"]
    lines = ["# onebox benchmark", "",
             f"- command: `{doc['command']}`",
             f"- started: {doc['started']}; commit {(doc['git']['commit'] or '?')[:12]}"
             f"{' (uncommitted changes under src/)' if doc['git']['dirty'] else ''}",
             f"- machine: {mf['nproc']} CPUs, {mf['cpu_model']}, Linux {mf['kernel']}, "
             f"{mf['mem_total_mb']} MB RAM ({mf['mem_available_mb']} MB available), "
             f"load average at start {', '.join(f'{x:.2f}' for x in mf['loadavg_at_start'])}",
             f"- load: {mf['wrk']}, -t1 -c{CONNECTIONS}, {doc['settings']['duration']} s per run after a "
             f"{doc['settings']['warmup']} s warm-up, median of {doc['settings']['runs']} run(s); server and wrk share the machine",
             f"- release binary: {doc['binary']['size_bytes'] / 2**20:.1f} MB ({doc['binary']['size_bytes']:,} bytes)",
             ""]
    if doc.get("datasette_version"):
        lines[-1:-1] = [f"- peer: Datasette {doc['datasette_version']} (immutable copy of the same seeded file, suggest_facets off)"]
    for res in doc["results"]:
        lines += [f"## {res['rows']:,} rows", "",
                  f"cold start to first 200: {res['cold_start_ms']:.1f} ms (median of "
                  f"{', '.join(f'{s:.1f}' for s in res['cold_start_all_ms'])}) · idle RSS {res['idle_rss_mb']:.1f} MB · "
                  f"database {res['db_size_mb']:.0f} MB · seeded in {res['seed_seconds']:.1f} s · "
                  f"disk {res.get('disk_mb_s', 0):.0f} MB/s (sequential, fdatasync; measured before (e))", "",
                  table(res), ""]
        for note in res["notes"]:
            lines.append(f"- note: {note}")
        if res["notes"]:
            lines.append("")
    lines += ["## Targets (issue 3)", "", "| rows | target | value | result |", "|---|---|---|---|"]
    for t in doc["targets"]:
        verdict = "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        rows = f"{t['rows']:,}" if isinstance(t["rows"], int) else t["rows"]
        lines.append(f"| {rows} | {t['target']} | {t['value']} | {verdict}{' — ' + t['note'] if t['note'] else ''} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description="onebox benchmark harness (see bench/README.md)")
    p.add_argument("--quick", action="store_true", help="10k rows, 1 run, 5 s per scenario")
    p.add_argument("--rows", help="comma-separated row counts (default 10000,100000,1000000)")
    p.add_argument("--duration", type=int, help="seconds per measured run (default 10; quick 5)")
    p.add_argument("--runs", type=int, help="measured runs per scenario, median reported (default 3; quick 1)")
    p.add_argument("--warmup", type=int, help="warm-up seconds per scenario (default 2; quick 1)")
    p.add_argument("--no-build", action="store_true", help="use the existing target/release/onebox")
    p.add_argument("--no-datasette", action="store_true", help="skip the Datasette peer")
    o = p.parse_args()
    q = o.quick
    o.rows = [int(x.replace("_", "")) for x in (o.rows or ("10000" if q else "10000,100000,1000000")).split(",")]
    o.duration = o.duration or (5 if q else 10)
    o.runs = o.runs or (1 if q else 3)
    o.warmup = o.warmup or (1 if q else 2)
    if o.duration < 1 or o.runs < 1 or o.warmup < 1 or any(r < PAGE for r in o.rows):
        p.error("durations and runs must be ≥ 1 and every row count ≥ 20")
    return o


def check_tools() -> None:
    missing = [t for t in ("wrk", "sqlite3") if not shutil.which(t)]
    if missing:
        raise BenchError(f"missing {' and '.join(missing)}: install with `apt-get install -y {' '.join(missing)}`")


def finish(doc: dict, started: dt.datetime, complete: bool) -> None:
    """Print the report and write the JSON for the row counts done so far."""
    doc["complete"] = complete
    doc["targets"] = targets(doc["results"])
    text = report(doc)
    if not complete:
        text = (f"**PARTIAL: the run stopped after {len(doc['results'])} of "
                f"{len(doc['settings']['rows'])} row counts.**\n\n") + text
    print(text, flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (started.strftime("%Y%m%dT%H%M%SZ") + ".json")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"results written to {path.relative_to(ROOT)}")


def main() -> int:
    opts = parse_args()

    def on_signal(signum, _frame):
        log(f"got {signal.Signals(signum).name}: stopping everything this run started")
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)  # tear down like Ctrl-C
    signal.signal(signal.SIGHUP, on_signal)
    started = dt.datetime.now(dt.timezone.utc)
    doc: dict | None = None
    rc = 0
    try:
        check_tools()
        if not opts.no_build:
            log("cargo build --release --bin onebox --example write_floor")
            try:
                subprocess.run(["cargo", "build", "--release", "--bin", "onebox", "--example", "write_floor"],
                               cwd=ROOT, check=True, timeout=3600, stdout=sys.stderr)
            except subprocess.CalledProcessError:
                raise BenchError("cargo build --release failed (see above)") from None
            except subprocess.TimeoutExpired:
                raise BenchError("cargo build --release took over an hour") from None
        if not BIN.exists():
            raise BenchError(f"{BIN} does not exist: run without --no-build")
        doc = {
            "started": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "command": "python3 bench/bench.py " + " ".join(sys.argv[1:]),
            "settings": {"rows": opts.rows, "duration": opts.duration, "runs": opts.runs,
                         "warmup": opts.warmup, "connections": CONNECTIONS, "threads": 1,
                         "filter": FILTER, "sort": SORT, "depth": DEPTH},
            "machine": machine_facts(),
            "git": git_facts(),
            "binary": {"path": str(BIN.relative_to(ROOT)), "size_bytes": BIN.stat().st_size},
            "skipped": {k: why for k, _, why in SKIPPED},
            "results": [],
        }
        ds_exe = None
        if opts.no_datasette:
            log("Datasette skipped (--no-datasette)")
        else:
            ds_exe = datasette_bin()
            if ds_exe:
                doc["datasette_version"] = run([str(ds_exe), "--version"], timeout=60).strip().split()[-1]
        tag = started.strftime("%H%M%S")
        for rows in opts.rows:
            doc["results"].append(bench_rows(rows, opts, ds_exe, tag))
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        rc = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the bounded teardown finish
        cleanup()
    if doc and doc["results"]:  # a failed or interrupted run still reports the sizes it finished
        finish(doc, started, complete=rc == 0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
