//! The result table, as text and as JSON.

use serde_json::{Value, json};

use crate::stats::{Summary, fmt_secs};

/// Whether a row met its target.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The target was met.
    Met,
    /// The target was missed.
    Missed,
    /// No target: reported for information.
    Info,
    /// Not measured, and why.
    NotMeasured(String),
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn of(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }

    fn label(&self) -> &str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::Info => "-",
            Verdict::NotMeasured(_) => "not measured",
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Short id: `1a`, `2`, `3/32` ...
    pub id: String,
    /// What was measured.
    pub name: String,
    /// Our value, formatted.
    pub ours: String,
    /// The baseline's name and value, formatted.
    pub baseline: String,
    /// ours / baseline, when it means something.
    pub ratio: Option<f64>,
    /// The target, in words.
    pub target: String,
    /// Met or not.
    pub verdict: Verdict,
    /// The raw numbers.
    pub data: Value,
}

impl Row {
    /// A row that could not be measured.
    pub fn not_measured(id: &str, name: &str, target: &str, why: String) -> Row {
        Row {
            id: id.into(),
            name: name.into(),
            ours: "-".into(),
            baseline: "-".into(),
            ratio: None,
            target: target.into(),
            verdict: Verdict::NotMeasured(why),
            data: Value::Null,
        }
    }
}

/// "median / p99" of a timing.
pub fn timing(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!("{} / {}", fmt_secs(s.median), fmt_secs(s.p99)),
        None => "-".into(),
    }
}

/// Everything one run produced.
#[derive(Debug)]
pub struct Report {
    /// When, UTC.
    pub date: String,
    /// `available_parallelism`.
    pub cores: usize,
    /// CPU model, kernel.
    pub machine: String,
    /// `full` or `quick`.
    pub mode: String,
    /// The command that produced it.
    pub command: String,
    /// `/proc/loadavg` (1, 5, 15 min) before and after the run: other
    /// work on the machine shows up in every number.
    pub load: (String, String),
    /// The rows, in order.
    pub rows: Vec<Row>,
}

impl Report {
    /// The table as Markdown (readable in a terminal too).
    pub fn text(&self) -> String {
        let mut out = format!(
            "spfs-autostart benchmarks: {} UTC, {} cores ({}), {} mode\n\
             command: {}\n\
             load average (1/5/15 min): {} before, {} after\n\
             times are median / p99; ratio = ours / baseline (medians)\n\n",
            self.date, self.cores, self.machine, self.mode, self.command, self.load.0, self.load.1
        );
        let header = [
            "#",
            "measurement",
            "ours",
            "baseline",
            "ratio",
            "target",
            "result",
        ];
        let mut cells: Vec<[String; 7]> = vec![header.map(String::from)];
        for r in &self.rows {
            cells.push([
                r.id.clone(),
                r.name.clone(),
                r.ours.clone(),
                r.baseline.clone(),
                r.ratio
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "-".into()),
                r.target.clone(),
                r.verdict.label().to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|i| {
                cells
                    .iter()
                    .map(|c| c[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (n, row) in cells.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(&format!("| {} |\n", line.join(" | ")));
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
            }
        }
        let notes: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| match &r.verdict {
                Verdict::NotMeasured(why) => Some(format!("- {} not measured: {why}", r.id)),
                _ => None,
            })
            .collect();
        if !notes.is_empty() {
            out.push('\n');
            out.push_str(&notes.join("\n"));
            out.push('\n');
        }
        out
    }

    /// The whole report as one JSON object.
    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "name": r.name,
                    "ours": r.ours,
                    "baseline": r.baseline,
                    "ratio": r.ratio,
                    "target": r.target,
                    "result": r.verdict.label(),
                    "not_measured_reason": match &r.verdict {
                        Verdict::NotMeasured(why) => Value::from(why.as_str()),
                        _ => Value::Null,
                    },
                    "data": r.data,
                })
            })
            .collect();
        json!({
            "date": self.date,
            "cores": self.cores,
            "machine": self.machine,
            "mode": self.mode,
            "command": self.command,
            "load_before": self.load.0,
            "load_after": self.load.1,
            "rows": rows,
        })
    }
}

/// Now, as `YYYY-MM-DD HH:MM:SS` UTC (civil-from-days, no date crate).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
