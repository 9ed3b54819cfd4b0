//! The write floor for bench scenario (e0): the bench's creates through onebox's own service
//! layer (`services::records::create`: validation, rules, the change log, the written row as
//! JSON, group commit in the single writer, the checkpointer), from 32 concurrent tasks, with
//! no HTTP in between. (a) is the ceiling of the HTTP side; this is the ceiling of the storage
//! side: how fast (e) could go if requests cost nothing.
//!
//! Usage: `write_floor DATA_DIR COLLECTION ADMIN_ID SLUG_PREFIX SECONDS` (the server must be
//! stopped: this takes the data dir's lock). Prints one JSON object: creates, seconds, rate,
//! p50/p99 latency, CPU µs per create and peak RSS of this process.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use onebox::config::Settings;
use onebox::services::identity::Caller;
use serde_json::{Map, Value, json};

// The server's allocator (see `src/main.rs`), so SQLite allocates here as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent creators: the bench's `wrk -c32`.
const TASKS: usize = 32;

/// The bench's `create.lua` body for request number `n`.
fn body(n: u64, prefix: &str, admin: &str) -> Map<String, Value> {
    let year: u32 = rand::random_range(1990..=2024);
    let kind = ["news", "blog", "note"][rand::random_range(0..3)];
    let mut m = json!({
        "title": format!("Bench post {n}"),
        "slug": format!("{prefix}-{n}"),
        "year": year,
        "draft": n.is_multiple_of(7),
        "published": format!(
            "{year:04}-{:02}-{:02}T12:00:00.000Z",
            rand::random_range(1..=12),
            rand::random_range(1..=28)
        ),
        "kind": kind,
    });
    if n.is_multiple_of(10) {
        m["author"] = json!(admin);
    }
    match m {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// This process's CPU time (user + system), in clock ticks of 10 ms.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, collection, admin, prefix, seconds] = args.as_slice() else {
        anyhow::bail!("usage: write_floor DATA_DIR COLLECTION ADMIN_ID SLUG_PREFIX SECONDS");
    };
    let seconds: f64 = seconds.parse()?;
    let settings = Settings::defaults(PathBuf::from(dir));
    let _lock = onebox::app::lock_data_dir(&settings)?;
    let app = Arc::new(onebox::app::App::start(settings).await?);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let ticks = cpu_ticks();
    let mut tasks = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let (app, counter) = (app.clone(), counter.clone());
        let (collection, admin, prefix) = (collection.clone(), admin.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let caller = Caller::anonymous();
            let mut micros = Vec::with_capacity(65_536);
            let mut failed = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                let input = body(n, &prefix, &admin);
                let t = Instant::now();
                match onebox::services::records::create(&app, &collection, &caller, input).await {
                    Ok(_) => micros.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32),
                    Err(_) => failed += 1,
                }
            }
            (micros, failed)
        }));
    }
    let mut micros = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (m, f) = t.await?;
        micros.extend(m);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks() - ticks;
    micros.sort_unstable();
    let creates = micros.len() as f64;
    let out = json!({
        "creates": micros.len(),
        "failed": failed,
        "seconds": elapsed,
        "rps": creates / elapsed,
        "p50_ms": percentile(&micros, 0.50),
        "p99_ms": percentile(&micros, 0.99),
        "cpu_us_per_req": if creates > 0.0 { ticks as f64 * 10_000.0 / creates } else { 0.0 },
        "peak_rss_mb": peak_rss_kb() as f64 / 1024.0,
    });
    println!("{out}");
    Ok(())
}
