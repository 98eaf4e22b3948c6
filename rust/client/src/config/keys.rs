//! Every key of the configuration, once: [`ConfigView`] is what the file
//! holds (each key optional, unknown keys refused, each value checked as it
//! is read), what `to_toml` writes and what a front end prints (the CLI's
//! `config --json`). A new key is added here and to [`Config`]; the two
//! conversions below then fail to compile until they carry it too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validate::bound;
use super::{Config, Endpoint, StopStep, VersionPolicy};

/// The configuration as the file writes it: one field per key, named as
/// the key. Read from a file, a key left out is `None`; made by
/// [`Config::view`], every key is set but those that are unset in the
/// configuration (`expected_version`, `state_dir`, `log_dir`). Serialized,
/// `None` is left out of TOML and is `null` in JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigView {
    /// `program`: a bare name or an absolute path.
    #[serde(default, deserialize_with = "checked::program")]
    pub program: Option<String>,
    /// `args`: the program's arguments.
    #[serde(default, deserialize_with = "checked::args")]
    pub args: Option<Vec<String>>,
    /// `endpoint`: `unix`, `unix:///PATH` or `tcp://IP:PORT` (a loopback IP).
    #[serde(default, serialize_with = "as_text")]
    pub endpoint: Option<Endpoint>,
    /// `endpoint_env`: the variable a plain service reads a TCP endpoint
    /// from; `""` for none.
    #[serde(default, deserialize_with = "checked::endpoint_env")]
    pub endpoint_env: Option<String>,
    /// `ready_timeout_secs`.
    #[serde(
        default,
        deserialize_with = "checked::bounded::<_, _, { bound::READY_TIMEOUT_SECS }>"
    )]
    pub ready_timeout_secs: Option<u64>,
    /// `stop_timeout_secs`.
    #[serde(
        default,
        deserialize_with = "checked::bounded::<_, _, { bound::STOP_TIMEOUT_SECS }>"
    )]
    pub stop_timeout_secs: Option<u64>,
    /// `stop_sequence`: `"shutdown"` and signal names.
    #[serde(default, deserialize_with = "checked::stop_sequence")]
    pub stop_sequence: Option<Vec<StopStep>>,
    /// `idle_timeout_secs`; 0 means never.
    #[serde(
        default,
        deserialize_with = "checked::bounded::<_, _, { bound::IDLE_TIMEOUT_SECS }>"
    )]
    pub idle_timeout_secs: Option<u64>,
    /// `expected_version`; `""` in the file leaves it unset.
    #[serde(default, deserialize_with = "checked::expected_version")]
    pub expected_version: Option<String>,
    /// `on_version_mismatch`: `"restart"` or `"error"`.
    #[serde(default, deserialize_with = "checked::on_version_mismatch")]
    pub on_version_mismatch: Option<VersionPolicy>,
    /// `state_dir`: an absolute path.
    #[serde(default, deserialize_with = "checked::state_dir")]
    pub state_dir: Option<PathBuf>,
    /// `log_dir`: an absolute path.
    #[serde(default, deserialize_with = "checked::log_dir")]
    pub log_dir: Option<PathBuf>,
    /// `log_max_bytes`.
    #[serde(
        default,
        deserialize_with = "checked::bounded::<_, _, { bound::LOG_MAX_BYTES }>"
    )]
    pub log_max_bytes: Option<u64>,
    /// `log_keep`.
    #[serde(
        default,
        deserialize_with = "checked::bounded::<_, _, { bound::LOG_KEEP }>"
    )]
    pub log_keep: Option<u32>,
    /// `[env]`: extra environment for the service. Last, because TOML
    /// writes a table after the plain keys.
    #[serde(default, deserialize_with = "checked::env")]
    pub env: Option<BTreeMap<String, String>>,
}

/// An endpoint as its config syntax (the protocol's type reads it but
/// does not write it).
fn as_text<S: serde::Serializer>(endpoint: &Option<Endpoint>, s: S) -> Result<S::Ok, S::Error> {
    match endpoint {
        Some(endpoint) => s.collect_str(endpoint),
        None => s.serialize_none(),
    }
}

impl ConfigView {
    /// Every key the file accepts, in the order the view writes them. Read
    /// from the view's own deserializer, so it is the list serde checks
    /// files against and cannot drift from it.
    pub fn keys() -> &'static [&'static str] {
        let mut fields = field_names::FieldNames(None);
        // The deserializer only records the names and then fails on purpose.
        let _ = ConfigView::deserialize(&mut fields);
        fields.0.unwrap_or(&[])
    }
}

impl Config {
    /// Every key with its effective value, as the file writes it.
    pub fn view(&self) -> ConfigView {
        ConfigView {
            program: Some(self.program.clone()),
            args: Some(self.args.clone()),
            endpoint: Some(self.endpoint.clone()),
            // "" is the file's "none", so the TOML reads back the same.
            endpoint_env: Some(self.endpoint_env.clone().unwrap_or_default()),
            ready_timeout_secs: Some(self.ready_timeout.as_secs()),
            stop_timeout_secs: Some(self.stop_timeout.as_secs()),
            stop_sequence: Some(self.stop_sequence.clone()),
            idle_timeout_secs: Some(self.idle_timeout.as_secs()),
            expected_version: self.expected_version.clone(),
            on_version_mismatch: Some(self.on_version_mismatch),
            state_dir: self.state_dir.clone(),
            log_dir: self.log_dir.clone(),
            log_max_bytes: Some(self.log_max_bytes),
            log_keep: Some(self.log_keep),
            env: Some(self.env.clone()),
        }
    }

    /// Set every key the view sets; `[env]` adds to the environment. The
    /// view's values are trusted as checked: a view read from a file was
    /// checked as it was read, and [`Config::validate`] checks the rest.
    pub fn apply_view(&mut self, view: ConfigView) {
        // Taken apart without `..`, so that a key added to the view and not
        // applied here does not compile.
        let ConfigView {
            program,
            args,
            endpoint,
            endpoint_env,
            ready_timeout_secs,
            stop_timeout_secs,
            stop_sequence,
            idle_timeout_secs,
            expected_version,
            on_version_mismatch,
            state_dir,
            log_dir,
            log_max_bytes,
            log_keep,
            env,
        } = view;
        let secs = Duration::from_secs;
        if let Some(program) = program {
            self.program = program;
        }
        if let Some(args) = args {
            self.args = args;
        }
        if let Some(endpoint) = endpoint {
            self.endpoint = endpoint;
        }
        // An empty value is the file's way to say "none".
        if let Some(name) = endpoint_env {
            self.endpoint_env = Some(name).filter(|n| !n.is_empty());
        }
        self.ready_timeout = ready_timeout_secs.map_or(self.ready_timeout, secs);
        self.stop_timeout = stop_timeout_secs.map_or(self.stop_timeout, secs);
        if let Some(steps) = stop_sequence {
            self.stop_sequence = steps;
        }
        self.idle_timeout = idle_timeout_secs.map_or(self.idle_timeout, secs);
        if let Some(version) = expected_version {
            self.expected_version = Some(version).filter(|v| !v.is_empty());
        }
        self.on_version_mismatch = on_version_mismatch.unwrap_or(self.on_version_mismatch);
        self.state_dir = state_dir.or(self.state_dir.take());
        self.log_dir = log_dir.or(self.log_dir.take());
        self.log_max_bytes = log_max_bytes.unwrap_or(self.log_max_bytes);
        self.log_keep = log_keep.unwrap_or(self.log_keep);
        self.env.extend(env.unwrap_or_default());
    }
}

/// Deserializers that run the same checks as the environment and
/// [`Config::validate`], and prefix the key, so the TOML error carries the
/// key, the line and the column.
mod checked {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    use super::super::validate::{self, BOUNDS};
    use super::StopStep;

    fn with<'de, D, T>(
        d: D,
        key: &str,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        // A value of the wrong type names the key too (serde's own message
        // says only what it expected).
        let value = T::deserialize(d).map_err(|e| D::Error::custom(format!("{key}: {e}")))?;
        check(&value).map_err(|why| D::Error::custom(format!("{key}: {why}")))?;
        Ok(Some(value))
    }

    /// A key whose type says everything, with its name in any error.
    fn named<'de, D, T>(d: D, key: &str) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        with(d, key, |_: &T| Ok(()))
    }

    pub(super) fn expected_version<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        named(d, "expected_version")
    }

    pub(super) fn on_version_mismatch<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<super::VersionPolicy>, D::Error> {
        named(d, "on_version_mismatch")
    }

    /// A numeric key, within its bounds (`BOUNDS[INDEX]`).
    pub(super) fn bounded<'de, D, T, const INDEX: usize>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Copy + Into<u64>,
    {
        with(d, BOUNDS[INDEX].key, |n: &T| {
            validate::check_bound(INDEX, (*n).into()).map(drop)
        })
    }

    pub(super) fn program<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        with(d, "program", |p: &String| validate::program(p).map(drop))
    }

    pub(super) fn args<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        with(d, "args", |a: &Vec<String>| validate::args(a))
    }

    pub(super) fn stop_sequence<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<StopStep>>, D::Error> {
        let steps = Vec::<String>::deserialize(d)
            .map_err(|e| D::Error::custom(format!("stop_sequence: {e}")))?;
        validate::stop_sequence(&steps)
            .map(Some)
            .map_err(|why| D::Error::custom(format!("stop_sequence: {why}")))
    }

    pub(super) fn endpoint_env<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        with(d, "endpoint_env", |n: &String| {
            validate::endpoint_env(n).map(drop)
        })
    }

    pub(super) fn state_dir<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        with(d, "state_dir", |p: &PathBuf| validate::absolute_dir(p))
    }

    pub(super) fn log_dir<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        with(d, "log_dir", |p: &PathBuf| validate::absolute_dir(p))
    }

    pub(super) fn env<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, String>>, D::Error> {
        let env = BTreeMap::<EnvName, String>::deserialize(d)?;
        let env: BTreeMap<String, String> = env.into_iter().map(|(k, v)| (k.0, v)).collect();
        env.iter()
            .try_for_each(|(key, value)| validate::env_var(key, value))
            .map_err(|why| D::Error::custom(format!("env: {why}")))?;
        Ok(Some(env))
    }

    /// An `[env]` key, checked as it is read so the error points at it.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct EnvName(String);

    impl<'de> Deserialize<'de> for EnvName {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let key = String::deserialize(d)?;
            validate::env_var(&key, "").map_err(|why| D::Error::custom(format!("env: {why}")))?;
            Ok(EnvName(key))
        }
    }
}

/// A deserializer that reads nothing and records the field names a
/// derived `Deserialize` of a struct asks for: the keys it accepts.
mod field_names {
    use serde::de::{self, Visitor};

    /// The names, once a struct asked.
    #[derive(Debug)]
    pub struct FieldNames(pub Option<&'static [&'static str]>);

    impl<'de> de::Deserializer<'de> for &mut FieldNames {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's field names are read"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("field names recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
}
