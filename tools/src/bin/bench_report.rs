//! Turns criterion's results (`target/criterion`) into one markdown table and an SVG chart.
//!
//! ```sh
//! cargo bench --bench scenarios
//! cargo run --release -p ringmq-tools --bin bench_report         # prints the table, writes the files
//! cargo run --release -p ringmq-tools --bin bench_report -- DIR  # reads another criterion directory
//! ```
//!
//! For each throughput scenario: events per second of each implementation (criterion's median
//! time per iteration, and the events per iteration the benchmark declared), and ringmq's ratio to
//! each peer. For the round-trip group: the median round trip of each, and its ratio to the
//! hardware floor (`cache_line`). The header has the date, the CPU model and the core count.
//! Writes `target/criterion/report.md` and `target/criterion/performance.svg` (for the
//! developer's own comparison: README quotes only the comparison driver, `tools/`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One benchmark: group, implementation, parameter (burst), median ns per iteration, events per
/// iteration (`None` for latency benchmarks).
#[derive(Debug, Clone)]
struct Result {
    group: String,
    implementation: String,
    parameter: String,
    median_ns: f64,
    elements: Option<f64>,
}

impl Result {
    fn events_per_sec(&self) -> Option<f64> {
        self.elements.map(|e| e / self.median_ns * 1e9)
    }
}

/// One benchmark's latest result, from criterion's `benchmark.json` (its id and declared
/// throughput) and `estimates.json` (the median's point estimate).
fn read(dir: &Path) -> Option<Result> {
    let json = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).ok()?).ok()
    };
    let bench = json("benchmark.json")?;
    let estimates = json("estimates.json")?;
    let median_ns = estimates["median"]["point_estimate"].as_f64()?;
    let elements = bench["throughput"]["Elements"].as_f64();
    let parameter = bench["value_str"].as_str().unwrap_or_default().to_string();
    Some(Result {
        group: bench["group_id"].as_str()?.to_string(),
        implementation: bench["function_id"].as_str()?.to_string(),
        parameter,
        median_ns,
        elements,
    })
}

/// Every `new/` directory under `root` that holds a benchmark's latest estimates.
fn collect(root: &Path, out: &mut Vec<Result>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(r) = read(&path) {
                out.push(r);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            collect(&path, out);
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Today's UTC date, from the system clock (days since 1970 to a civil date).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The order implementations appear in: ringmq first, then the peers, the floor last.
fn rank(implementation: &str) -> usize {
    [
        "ringmq",
        "ringmq_coalesce",
        "disruptor",
        "crossbeam_channel",
        "rtrb",
        "std_sync_channel",
        "cache_line",
    ]
    .iter()
    .position(|&n| n == implementation)
    .unwrap_or(99)
}

type Rows = BTreeMap<(String, u64, String), BTreeMap<String, Result>>;

fn rows(results: &[Result]) -> Rows {
    let mut rows: Rows = BTreeMap::new();
    for r in results {
        let key = (
            r.group.clone(),
            r.parameter.parse().unwrap_or(0),
            r.parameter.clone(),
        );
        rows.entry(key)
            .or_default()
            .insert(r.implementation.clone(), r.clone());
    }
    rows
}

fn sorted(row: &BTreeMap<String, Result>) -> Vec<&Result> {
    let mut v: Vec<&Result> = row.values().collect();
    v.sort_by_key(|r| rank(&r.implementation));
    v
}

fn markdown(rows: &Rows) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        md,
        "Measured {} on {} ({cores} cores). Throughput in million events per second (criterion's \
         median); ratio = ringmq / peer (above 1: ringmq is faster). Where a scenario also ran \
         ringmq with `Consumer::coalesce`, its figure and ratios follow the defaults' after a \
         slash.\n",
        today(),
        cpu_model()
    );
    let _ = writeln!(
        md,
        "| scenario | burst | ringmq | peers (M events/s) | ringmq / peer |\n|---|---|---|---|---|"
    );
    for ((group, _, param), row) in rows {
        let all = sorted(row);
        let Some(ours) = row.get("ringmq") else {
            continue;
        };
        let Some(ours_rate) = ours.events_per_sec() else {
            continue;
        };
        let variant = row.get("ringmq_coalesce").and_then(Result::events_per_sec);
        let peers: Vec<&&Result> = all
            .iter()
            .filter(|r| !r.implementation.starts_with("ringmq"))
            .collect();
        let figures: Vec<String> = peers
            .iter()
            .filter_map(|r| {
                r.events_per_sec()
                    .map(|e| format!("{} {:.1}", r.implementation, e / 1e6))
            })
            .collect();
        let ratios: Vec<String> = peers
            .iter()
            .filter_map(|r| {
                r.events_per_sec().map(|e| match variant {
                    Some(v) => {
                        format!("{} {:.2}x / {:.2}x", r.implementation, ours_rate / e, v / e)
                    }
                    None => format!("{} {:.2}x", r.implementation, ours_rate / e),
                })
            })
            .collect();
        let ours_cell = match variant {
            Some(v) => format!("{:.1} / {:.1}", ours_rate / 1e6, v / 1e6),
            None => format!("{:.1}", ours_rate / 1e6),
        };
        let _ = writeln!(
            md,
            "| {group} | {param} | {ours_cell} | {} | {} |",
            figures.join(", "),
            ratios.join(", ")
        );
    }
    let latency: Vec<_> = rows
        .iter()
        .filter(|(_, row)| row.values().all(|r| r.elements.is_none()))
        .collect();
    if !latency.is_empty() {
        let _ = writeln!(
            md,
            "\n| round trip | median | / cache_line floor |\n|---|---|---|"
        );
        for ((group, _, _), row) in latency {
            let floor = row.get("cache_line").map(|r| r.median_ns);
            for r in sorted(row) {
                let ratio = floor.map_or(String::from("-"), |f| format!("{:.2}x", r.median_ns / f));
                let _ = writeln!(
                    md,
                    "| {group}: {} | {:.0} ns | {ratio} |",
                    r.implementation, r.median_ns
                );
            }
        }
    }
    md
}

const COLORS: [&str; 7] = [
    "#d62728", "#ff9896", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f",
];

/// Grouped horizontal bars, one group per scenario and burst, one bar per implementation, on a
/// log scale of events per second; latency rows as round trips in ns on their own scale.
fn svg(rows: &Rows) -> String {
    let throughput: Vec<_> = rows
        .iter()
        .filter(|(_, row)| row.values().any(|r| r.elements.is_some()))
        .collect();
    let bar = 9.0;
    let label_w = 190.0;
    let plot_w = 520.0;
    let mut y = 40.0;
    let mut body = String::new();
    let (lo, hi) = (1e5f64.log10(), 1e10f64.log10());
    let x_of = |rate: f64| label_w + (rate.max(1e5).log10() - lo) / (hi - lo) * plot_w;
    for ((group, _, param), row) in &throughput {
        let bars = sorted(row);
        let label = format!("{group} ×{param}");
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="end">{label}</text>"#,
            label_w - 6.0,
            y + bars.len() as f64 * bar / 2.0 + 3.0
        );
        for r in bars {
            let rate = r.events_per_sec().unwrap_or(0.0);
            let color = COLORS[rank(&r.implementation).min(COLORS.len() - 1)];
            let _ = writeln!(
                body,
                r#"<rect x="{label_w}" y="{y}" width="{:.1}" height="{}" fill="{color}"><title>{} {:.1} M events/s</title></rect>"#,
                x_of(rate) - label_w,
                bar - 1.0,
                r.implementation,
                rate / 1e6
            );
            y += bar;
        }
        y += 6.0;
    }
    let mut axis = String::new();
    for p in 5..=10 {
        let x = label_w + (p as f64 - lo) / (hi - lo) * plot_w;
        let _ = writeln!(
            axis,
            r##"<line x1="{x}" y1="30" x2="{x}" y2="{y}" stroke="#ddd"/><text x="{x}" y="24" font-size="9" text-anchor="middle">1e{p}/s</text>"##
        );
    }
    let mut legend = String::new();
    let names = [
        "ringmq",
        "ringmq_coalesce",
        "disruptor",
        "crossbeam_channel",
        "rtrb",
        "std_sync_channel",
    ];
    for (i, name) in names.iter().enumerate() {
        let lx = 10.0 + i as f64 * 118.0;
        let _ = writeln!(
            legend,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="10">{name}</text>"#,
            y + 10.0,
            COLORS[i],
            lx + 14.0,
            y + 19.0
        );
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="14" font-size="12">ringmq and peers, events per second (log scale), {} on {}</text>
{axis}{body}{legend}</svg>
"#,
        label_w + plot_w + 20.0,
        y + 40.0,
        today(),
        cpu_model()
    )
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/criterion"), PathBuf::from);
    let mut results = Vec::new();
    collect(&root, &mut results);
    if results.is_empty() {
        eprintln!(
            "no criterion results under {}: run `cargo bench --bench scenarios` first",
            root.display()
        );
        std::process::exit(1);
    }
    let rows = rows(&results);
    let md = markdown(&rows);
    print!("{md}");
    let report = root.join("report.md");
    std::fs::write(&report, &md).expect("write report.md");
    std::fs::write(root.join("performance.svg"), svg(&rows)).expect("write performance.svg");
    eprintln!(
        "wrote {} and target/criterion/performance.svg ({} benchmarks)",
        report.display(),
        results.len()
    );
}
