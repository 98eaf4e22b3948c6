//! Building an [`AgentSpec`] for `spfs-autostart-agent` from the client's
//! configuration: the one place where that self-contained crate meets the
//! client.

use crate::config::{Config, env};
use crate::error::{Error, ErrorKind};
use crate::remedy::{Operation, Remedy};
use crate::{Paths, ResolvedEndpoint};
use spfs_autostart_agent::{AgentMode, AgentSpec, DEFAULT_LABEL};

/// Describe the configured service to launchd or systemd: the resolved
/// program, its arguments, the kit's settings and the user's environment,
/// the service log; in `Socket` mode the Unix socket the manager will own.
/// With `bundle_program` (for `SMAppService.agent(plistName:)`) the program
/// need not exist on this machine, and no per-user path (state dir, log
/// file) is written, because one bundled plist serves every user.
pub fn spec_from_config(
    config: &Config,
    paths: &Paths,
    mode: AgentMode,
    label: Option<&str>,
    bundle_program: Option<String>,
) -> crate::Result<AgentSpec> {
    let program = match crate::spawn::resolve_program(&config.program) {
        Ok(program) => program,
        // launchd runs the bundle's copy; this path is only a placeholder
        // that `BundleProgram` replaces in the plist.
        Err(_) if bundle_program.is_some() => std::path::Path::new("/").join(&config.program),
        Err(e) => return Err(e),
    };
    let endpoint = paths.endpoint(&config.endpoint);
    let mut spec = AgentSpec::new(program, paths.log_file());
    // A bundled plist is the app's (its own label, apart from the CLI's
    // agent); a developer printing one by hand must not get the CLI's.
    let default = match bundle_program {
        Some(_) => spfs_autostart_agent::APP_LABEL,
        None => DEFAULT_LABEL,
    };
    spec.label = label.unwrap_or(default).to_string();
    spec.args = config.args.clone();
    spec.mode = mode;
    spec.bundle_program = bundle_program;
    spec.env = config.service_env();
    spec.env.insert(
        env::IDLE_TIMEOUT_SECS.into(),
        config.idle_timeout.as_secs().to_string(),
    );
    // A bundled plist serves every user of the app: per-user paths are left
    // to the service's own defaults, resolved when it runs.
    if spec.bundle_program.is_none() {
        spec.env
            .insert(env::STATE_DIR.into(), paths.state_dir.display().to_string());
        // As the spawner passes it: a client of another config can tell
        // which log this service writes (`status`, `doctor`).
        spec.env
            .insert(env::LOG_DIR.into(), paths.log_dir.display().to_string());
        spec.env.insert(env::ENDPOINT.into(), endpoint.to_string());
    }

    if mode == AgentMode::Socket {
        match endpoint {
            ResolvedEndpoint::Unix(path) => spec.socket_path = Some(path),
            ResolvedEndpoint::Tcp(addr) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "socket mode needs a Unix socket endpoint, but the endpoint is tcp://{addr}; \
                         set endpoint = \"unix\", or install the agent always-on instead"
                    ),
                )
                .with_remedy(Remedy::SetKey("endpoint"))
                .with_remedy(Remedy::Run(always_on())));
            }
        }
    }
    Ok(spec)
}

/// How to run the agent always-on instead: install it where launchd is,
/// else print the systemd units (`agent install` is for launchd only).
fn always_on() -> Operation {
    if spfs_autostart_agent::supported() {
        Operation::AgentInstallAlways
    } else {
        Operation::AgentPrintSystemd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_gives_a_plain_service_its_tcp_endpoint_and_no_color() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.program = "/bin/sh".into();
        config.state_dir = Some(dir.path().join("state"));
        config.log_dir = Some(dir.path().join("logs"));
        config.set_endpoint("tcp://127.0.0.1:4100").unwrap();
        let paths = config.paths().unwrap();
        let spec = spec_from_config(&config, &paths, AgentMode::Always, None, None).unwrap();
        assert_eq!(
            spec.env
                .get(env::MACFUSE_LISTEN_ADDRESS)
                .map(String::as_str),
            Some("127.0.0.1:4100")
        );
        assert_eq!(spec.env.get("NO_COLOR").map(String::as_str), Some("1"));
        // Where it runs and logs, as a start on demand tells it.
        let dir_of = |name: &str| spec.env.get(name).map(std::path::PathBuf::from);
        assert_eq!(dir_of(env::STATE_DIR), Some(paths.state_dir.clone()));
        assert_eq!(dir_of(env::LOG_DIR), Some(paths.log_dir.clone()));
    }
}
