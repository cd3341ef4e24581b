//! `keyward-bench`: the parts of the benchmark no off-the-shelf load generator measures.
//!
//! - `stream URL KEY BODY_FILE CONCURRENCY REQUESTS`: streamed chat completions; prints JSON with
//!   percentiles of time to first byte and total time (µs), and the error count.
//! - `hold URL KEY BODY_FILE STREAMS PID`: opens STREAMS streams at once against a slow-streaming
//!   model and samples the resident memory of process PID while they are open; prints JSON with
//!   the RSS before and at peak (KiB) and how many streams completed.
//!
//! Every request runs on one shared HTTP/1.1 connection pool; timings are taken with
//! `Instant` around the request, so they include the client's own (small) overhead equally in
//! direct and through-Keyward runs.

mod knowledge;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: keyward-bench stream URL KEY BODY_FILE CONCURRENCY REQUESTS | hold URL KEY BODY_FILE STREAMS PID | kb-search STORE_URL CHUNKS DIMS QUERIES | kb-ingest STORE_URL DOCUMENTS";
    let report = match args.first().map(String::as_str) {
        Some("stream") if args.len() == 6 => {
            stream(&args[1], &args[2], &args[3], args[4].parse()?, args[5].parse()?).await?
        }
        Some("hold") if args.len() == 6 => {
            hold(&args[1], &args[2], &args[3], args[4].parse()?, args[5].parse()?).await?
        }
        Some("kb-search") if args.len() == 5 => {
            knowledge::search(&args[1], args[2].parse()?, args[3].parse()?, args[4].parse()?).await?
        }
        Some("kb-ingest") if args.len() == 3 => knowledge::ingest(&args[1], args[2].parse()?).await?,
        _ => return Err(usage.into()),
    };
    println!("{report}");
    Ok(())
}

fn client(pool: usize) -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .http1_only()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// One streamed request: (time to first body byte, total), both from sending.
async fn one_stream(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Arc<Vec<u8>>,
) -> Result<(Duration, Duration), Error> {
    let start = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.as_ref().clone())
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()).into());
    }
    let mut chunks = response.bytes_stream();
    let mut first = None;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if first.is_none() && !chunk.is_empty() {
            first = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    Ok((first.unwrap_or(total), total))
}

pub(crate) fn percentiles(mut micros: Vec<u64>) -> serde_json::Value {
    micros.sort_unstable();
    let at = |q: f64| -> u64 {
        if micros.is_empty() {
            return 0;
        }
        let index = ((micros.len() as f64) * q).ceil() as usize;
        micros[index.clamp(1, micros.len()) - 1]
    };
    json!({"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)})
}

async fn stream(
    url: &str,
    key: &str,
    body_file: &str,
    concurrency: usize,
    requests: usize,
) -> Result<serde_json::Value, Error> {
    let body = Arc::new(std::fs::read(body_file)?);
    let client = client(concurrency)?;
    // Warm the connections.
    for _ in 0..concurrency {
        let _ = one_stream(&client, url, key, &body).await;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, body, next) = (client.clone(), body.clone(), next.clone());
        let (url, key) = (url.to_owned(), key.to_owned());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0u64;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                match one_stream(&client, &url, &key, &body).await {
                    Ok((first, total)) => samples.push((first, total)),
                    Err(_) => errors += 1,
                }
            }
            (samples, errors)
        }));
    }
    let (mut ttfb, mut total, mut errors) = (Vec::new(), Vec::new(), 0);
    for worker in workers {
        let (samples, failed) = worker.await?;
        errors += failed;
        for (first, whole) in samples {
            ttfb.push(first.as_micros() as u64);
            total.push(whole.as_micros() as u64);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "requests": ttfb.len(),
        "errors": errors,
        "rps": ttfb.len() as f64 / elapsed,
        "ttfb_us": percentiles(ttfb),
        "total_us": percentiles(total),
    }))
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

async fn hold(
    url: &str,
    key: &str,
    body_file: &str,
    streams: usize,
    pid: u32,
) -> Result<serde_json::Value, Error> {
    let body = Arc::new(std::fs::read(body_file)?);
    let client = client(streams)?;
    let before = rss_kib(pid);
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (client, body) = (client.clone(), body.clone());
        let (url, key) = (url.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            one_stream(&client, &url, &key, &body).await.is_ok()
        }));
    }
    let mut peak = before;
    let sampling = async {
        loop {
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let completed = async {
        let mut ok = 0usize;
        for task in tasks {
            if task.await.unwrap_or(false) {
                ok += 1;
            }
        }
        ok
    };
    let completed = tokio::select! {
        ok = completed => ok,
        () = sampling => 0,
    };
    Ok(json!({"streams": streams, "completed": completed, "rss_before_kib": before, "rss_peak_kib": peak}))
}
