//! Reads the load generator's JSON lines (files given, or standard input) and prints the
//! results as a Markdown table per subscriber count, then the targets as measured ratios.
//!
//! ```text
//! table target/bench/results-*.jsonl
//! ```
//!
//! Labels it knows for the ratios: `outer-tokio`, `outer-smol` (Outer, oRPC), `orpc-ref`
//! (the oRPC reference server) and `floor` (axum + broadcast).

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use serde_json::Value;

fn f(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn fmt_rate(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 1e6 => format!("{:.2} M", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.1} k", v / 1e3),
        Some(v) => format!("{v:.0}"),
        None => "-".into(),
    }
}

fn ms(value: &Value) -> String {
    f(value).map_or("-".into(), |us| format!("{:.2}", us / 1000.0))
}

fn opt(value: Option<f64>, places: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.places$}"))
}

fn main() -> ExitCode {
    let mut text = String::new();
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        if let Err(err) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("table: {err}");
            return ExitCode::FAILURE;
        }
    }
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(more) => text.push_str(&more),
            Err(err) => {
                eprintln!("table: {file}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    // By subscriber count, then in the order runs appear (a later run of the same label and
    // count replaces an earlier one).
    let mut runs: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let Ok(run) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(n) = run["subscribers"].as_u64() else {
            continue;
        };
        let list = runs.entry(n).or_default();
        list.retain(|r| r["label"] != run["label"]);
        list.push(run);
    }
    for (n, list) in &runs {
        println!("\n### N = {n} subscribers\n");
        println!("| server | protocol | deliveries/s | posts/s | load p50 / p99 ms | paced rate | paced p50 / p99 / max ms | paced server CPU µs per delivery (in the kernel) | connect s | RSS / idle sub KiB | server cores | generator cores | server / generator CPU µs per delivery | lost | load avg |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for run in list {
            let load = &run["load"];
            let paced = &run["paced"];
            let lost = run["lost"].as_u64().unwrap_or(0)
                + run["ended_early"].as_u64().unwrap_or(0)
                + load["stalls"].as_u64().unwrap_or(0);
            // Multiplexed HTTP/2 subscribers: `orpc-h2 ×100` (streams per connection).
            let protocol = match run["streams_per_connection"].as_u64() {
                Some(k) if k > 1 => format!("{} ×{k}", run["protocol"].as_str().unwrap_or("?")),
                _ => run["protocol"].as_str().unwrap_or("?").to_string(),
            };
            println!(
                "| {} | {} | {} | {} | {} / {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |",
                run["label"].as_str().unwrap_or("?"),
                protocol,
                fmt_rate(f(&load["deliveries_per_s"])),
                opt(f(&load["events_per_s"]), 0),
                ms(&load["latency_us"]["p50"]),
                ms(&load["latency_us"]["p99"]),
                opt(f(&paced["rate"]), 0),
                ms(&paced["latency_us"]["p50"]),
                ms(&paced["latency_us"]["p99"]),
                ms(&paced["latency_us"]["max"]),
                match f(&paced["server_system_cpu_us_per_delivery"]) {
                    Some(system) => format!(
                        "{} ({system:.1})",
                        opt(f(&paced["server_cpu_us_per_delivery"]), 1)
                    ),
                    None => opt(f(&paced["server_cpu_us_per_delivery"]), 1),
                },
                opt(f(&run["connect_s"]), 2),
                opt(
                    f(&run["rss_per_idle_subscriber_bytes"]).map(|b| b / 1024.0),
                    1
                ),
                opt(f(&load["server_cores"]), 2),
                opt(f(&load["generator_cores"]), 2),
                opt(f(&load["server_cpu_us_per_delivery"]), 1),
                opt(f(&load["generator_cpu_us_per_delivery"]), 1),
                lost,
                opt(f(&run["load_average"]), 2),
            );
        }
    }
    println!("\n### Targets (measured ratios)\n");
    let get = |n: u64, label: &str| -> Option<&Value> {
        runs.get(&n)?.iter().find(|r| r["label"] == label)
    };
    let dps = |run: Option<&Value>| run.and_then(|r| f(&r["load"]["deliveries_per_s"]));
    for outer in ["outer-tokio", "outer-smol"] {
        for n in runs.keys() {
            let mine = dps(get(*n, outer));
            let vs_orpc = mine.zip(dps(get(*n, "orpc-ref"))).map(|(a, b)| a / b);
            let vs_floor = mine.zip(dps(get(*n, "floor"))).map(|(a, b)| a / b);
            // Server CPU time per delivery in a phase, `other`'s over ours: barely moved by other
            // work competing for the cores. In the paced phase the rate is the same for every
            // server and saturates none, so no scheduler's order of turns changes how many events
            // share a write.
            let cost = |label: &str, phase: &str| {
                get(*n, label).and_then(|r| f(&r[phase]["server_cpu_us_per_delivery"]))
            };
            let cost_ratio = |other: &str, phase: &str| {
                cost(other, phase)
                    .zip(cost(outer, phase))
                    .map(|(a, b)| a / b)
            };
            let cpu_vs_orpc = cost_ratio("orpc-ref", "load");
            let cpu_vs_floor = cost_ratio("floor", "load");
            let paced_vs_floor = cost_ratio("floor", "paced");
            let rss = get(*n, outer).and_then(|r| f(&r["rss_per_idle_subscriber_bytes"]));
            let p99 = get(*n, outer).and_then(|r| f(&r["paced"]["latency_us"]["p99"]));
            println!(
                "- {outer}, N = {n}: deliveries/s {} x the oRPC reference (target >= 10; by server CPU per delivery {} x), {} x the floor (target >= 0.77, i.e. within 1.3x; by CPU {} x; by CPU at the paced rate {} x), RSS {} KiB per idle subscriber (target <= 16 at N = 10,000), paced p99 {} ms (target <= 5 at N = 1,000)",
                opt(vs_orpc, 1),
                opt(cpu_vs_orpc, 1),
                opt(vs_floor, 2),
                opt(cpu_vs_floor, 2),
                opt(paced_vs_floor, 2),
                opt(rss.map(|b| b / 1024.0), 1),
                opt(p99.map(|us| us / 1000.0), 2),
            );
        }
    }
    ExitCode::SUCCESS
}
