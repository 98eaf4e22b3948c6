//! The doctor's report as the bindings see it.

use super::error::Remedy;

/// How bad a doctor finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DoctorSeverity {
    /// As it should be.
    Ok,
    /// Works, but the user should know.
    Warning,
    /// Stops the service from working.
    Problem,
}

/// One thing the doctor checked.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DoctorFinding {
    /// What was checked: `program`, `endpoint`, `state dir`, ...
    pub check: String,
    /// How it went.
    pub severity: DoctorSeverity,
    /// What was found.
    pub message: String,
    /// What to do about it, for warnings and problems.
    pub fix: Option<String>,
    /// The fix as data, where it is a config key or an operation, for the
    /// front end to say in its own words (as an error's remedies). Empty
    /// when the fix is outside the project, such as a `chmod`.
    pub remedies: Vec<Remedy>,
}

/// Everything the doctor found.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DoctorReport {
    /// Every finding, in the order checked.
    pub findings: Vec<DoctorFinding>,
    /// What `ensure` would do next.
    pub next: String,
    /// No finding is a problem.
    pub healthy: bool,
}

impl From<spfs_autostart_core::doctor::Report> for DoctorReport {
    fn from(report: spfs_autostart_core::doctor::Report) -> Self {
        use spfs_autostart_core::doctor::Severity as S;
        let healthy = report.healthy();
        DoctorReport {
            findings: report
                .findings
                .into_iter()
                .map(|f| DoctorFinding {
                    check: f.check,
                    severity: match f.severity {
                        S::Ok => DoctorSeverity::Ok,
                        S::Warning => DoctorSeverity::Warning,
                        S::Problem => DoctorSeverity::Problem,
                    },
                    message: f.summary,
                    fix: f.fix,
                    remedies: f.remedies.into_iter().map(Remedy::from).collect(),
                })
                .collect(),
            next: report.next,
            healthy,
        }
    }
}
