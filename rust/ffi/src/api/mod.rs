//! The uniffi surface: mirror types with `From` conversions and a
//! `ServiceManager` object that holds the core's manager and delegates.
//!
//! Async methods run on the library's runtime (so the foreign side may poll
//! them from any executor); dropping a call's future cancels it as the core
//! documents (an `ensure` kills the service it was starting: nothing is
//! left half-started).
//! `watch` and `follow_logs` feed an observer from a task on that runtime
//! until their [`TaskHandle`] is cancelled or dropped.

mod config;
mod doctor;
mod error;
mod feeds;
mod manager;
mod status;

pub use config::ServiceConfig;
pub use doctor::{DoctorFinding, DoctorReport, DoctorSeverity};
pub use error::{Remedy, ServiceError};
pub use feeds::{LogObserver, StatusObserver, TaskHandle, stop_all_feeds};
pub use manager::{ServiceManager, version};
pub use status::{
    IdleExit, Lease, Mount, ServiceState, ServiceStatus, StopMethod, StopOutcome, StopReport,
};
