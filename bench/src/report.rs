//! Results: latency summaries, a human table and one JSON line per run.

use crate::server::MachineTime;
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// A latency histogram in microseconds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// p50/p90/p99/p999/max in milliseconds.
pub fn latency(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "count": h.len(),
    })
}

/// One run of one workload against one server.
#[derive(Debug, Clone)]
pub struct Run {
    pub workload: String,
    pub target: String,
    pub figures: Map<String, Value>,
}

impl Run {
    pub fn new(workload: &str, target: &str) -> Self {
        Run {
            workload: workload.to_owned(),
            target: target.to_owned(),
            figures: Map::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.figures.insert(key.to_owned(), value);
    }

    /// Sets `key` to the CPU microseconds per operation, to two decimals
    /// (`null` when the CPU time is unknown or nothing was done).
    pub fn set_micros_per(&mut self, key: &str, cpu_seconds: Option<f64>, operations: u64) {
        let micros = cpu_seconds
            .filter(|_| operations > 0)
            .map(|s| (s * 1e8 / operations as f64).round() / 100.0);
        self.set(key, json!(micros));
    }

    /// Sets `machine_idle_pct`, `machine_iowait_pct` and
    /// `machine_steal_pct`: how much of the span the machine's cores were
    /// idle, waiting for I/O or taken by the hypervisor (a run whose steal
    /// differs much from its pair's was measured on a different machine,
    /// in effect). `null` when unknown.
    pub fn set_machine_shares(&mut self, machine: Option<MachineTime>) {
        let shares = machine.and_then(|m| m.shares());
        self.set("machine_idle_pct", json!(shares.map(|s| s.0)));
        self.set("machine_iowait_pct", json!(shares.map(|s| s.1)));
        self.set("machine_steal_pct", json!(shares.map(|s| s.2)));
    }

    /// Sets `key` to `numerator / denominator` of two figures already set,
    /// to three decimals (`null` when either is unknown or the denominator
    /// is zero).
    pub fn set_ratio(&mut self, key: &str, numerator: &str, denominator: &str) {
        let figure = |k: &str| self.figures.get(k).and_then(Value::as_f64);
        let ratio = figure(numerator)
            .zip(figure(denominator).filter(|d| *d > 0.0))
            .map(|(n, d)| (n / d * 1000.0).round() / 1000.0);
        self.set(key, json!(ratio));
    }

    /// The table, then the JSON line.
    pub fn print(&self) {
        println!("\n== {} against {}", self.workload, self.target);
        for (key, value) in flatten(&self.figures) {
            println!("  {key:<36} {value}");
        }
        let line =
            json!({ "workload": self.workload, "target": self.target, "figures": self.figures });
        println!("{line}");
    }
}

fn flatten(map: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (key, value) in map {
        match value {
            Value::Object(inner) => {
                for (k, v) in flatten(inner) {
                    out.push((format!("{key}.{k}"), v));
                }
            }
            other => out.push((key.clone(), other.clone())),
        }
    }
    out
}

/// Min, median and max of every numeric figure over repeated runs, as a
/// table and one JSON line (`"summary"`).
pub fn print_summary(runs: &[Run]) {
    let Some(first) = runs.first() else { return };
    if runs.len() < 2 {
        return;
    }
    println!(
        "\n== {} against {}: min / median / max over {} runs",
        first.workload,
        first.target,
        runs.len()
    );
    let mut summary = Map::new();
    for (key, _) in flatten(&first.figures) {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| flatten(&r.figures).into_iter().find(|(k, _)| *k == key))
            .filter_map(|(_, v)| v.as_f64())
            .collect();
        let (Some(min), Some(max)) = (
            values.iter().copied().reduce(f64::min),
            values.iter().copied().reduce(f64::max),
        ) else {
            continue;
        };
        let mid = median(values).unwrap_or(min);
        println!("  {key:<36} {min:>12.3} {mid:>12.3} {max:>12.3}");
        summary.insert(key, json!({ "min": min, "median": mid, "max": max }));
    }
    println!(
        "{}",
        json!({ "workload": first.workload, "target": first.target, "runs": runs.len(), "summary": summary })
    );
}

/// The median of the values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// Per-figure ratio of the medians of A and B.
pub fn print_ratios(a: &[Run], b: &[Run]) {
    println!(
        "\n== ratios A/B (medians over {} run pairs)",
        a.len().min(b.len())
    );
    let Some(first) = a.first() else { return };
    for (key, _) in flatten(&first.figures) {
        let pick = |runs: &[Run]| {
            median(
                runs.iter()
                    .filter_map(|r| flatten(&r.figures).into_iter().find(|(k, _)| *k == key))
                    .filter_map(|(_, v)| v.as_f64())
                    .collect(),
            )
        };
        if let (Some(x), Some(y)) = (pick(a), pick(b))
            && y != 0.0
        {
            println!("  {key:<36} {x:>12.3} / {y:>12.3} = {:.2}", x / y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Run;
    use crate::server::MachineTime;
    use serde_json::{Value, json};

    #[test]
    fn the_machine_shares_are_percentages_of_the_span_and_null_without_ticks() {
        let mut run = Run::new("send", "http://127.0.0.1:1");
        run.set_machine_shares(Some(MachineTime {
            total: 1600,
            idle: 200,
            iowait: 93,
            steal: 171,
        }));
        assert_eq!(run.figures["machine_idle_pct"], json!(12.5));
        assert_eq!(run.figures["machine_iowait_pct"], json!(5.8));
        assert_eq!(run.figures["machine_steal_pct"], json!(10.7));
        run.set_machine_shares(Some(MachineTime::default()));
        assert_eq!(run.figures["machine_steal_pct"], Value::Null);
        run.set_machine_shares(None);
        assert_eq!(run.figures["machine_idle_pct"], Value::Null);
    }

    #[test]
    fn the_machine_counters_read_from_proc_stat_grow() {
        let before = MachineTime::now().expect("/proc/stat on Linux");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut after = before;
        while after.total == before.total && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            after = MachineTime::now().unwrap();
        }
        assert!(after.total > before.total, "no tick in 5 s");
        assert!(after.idle >= before.idle && after.steal >= before.steal);
        assert!(after.idle - before.idle <= after.total - before.total);
    }

    #[test]
    fn a_ratio_of_two_figures_is_rounded_and_null_when_unknown() {
        let mut run = Run::new("send", "http://127.0.0.1:1");
        run.set("a", json!(68.2));
        run.set("b", json!(18.1));
        run.set("zero", json!(0.0));
        run.set("none", Value::Null);
        run.set_ratio("a_to_b", "a", "b");
        run.set_ratio("a_to_zero", "a", "zero");
        run.set_ratio("a_to_none", "a", "none");
        assert_eq!(run.figures["a_to_b"], json!(3.768));
        assert_eq!(run.figures["a_to_zero"], Value::Null);
        assert_eq!(run.figures["a_to_none"], Value::Null);
    }
}
