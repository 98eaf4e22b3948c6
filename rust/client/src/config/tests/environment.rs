//! Environment variables: those that override the file (what wins, what is
//! recorded, what is refused), and those the service is given
//! (`endpoint_env`, the `[env]` table).

use std::time::Duration;

use super::super::*;
use super::parse;

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "program = \"/bin/a\"\nidle_timeout_secs = 5\n").unwrap();
    let config = Config::load_with(Some(&file), |name| match name {
        env::PROGRAM => Some("/bin/b".into()),
        env::ENDPOINT => Some("tcp://127.0.0.1:9".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.program, "/bin/b");
    assert_eq!(config.idle_timeout, Duration::from_secs(5));
    assert_eq!(config.endpoint, Endpoint::Tcp(([127, 0, 0, 1], 9).into()));
    assert_eq!(config.source.as_deref(), Some(file.as_path()));
}

#[test]
fn each_variable_that_sets_a_key_is_recorded_until_a_setter_sets_it() {
    let mut config = Config::load_with(None, |name| match name {
        env::PROGRAM => Some("/bin/b".into()),
        env::IDLE_TIMEOUT_SECS => Some("5".into()),
        env::LOG_DIR => Some(String::new()), // empty counts as unset
        _ => None,
    })
    .unwrap();
    assert_eq!(
        config.env_overrides,
        [
            (env::PROGRAM, "program"),
            (env::IDLE_TIMEOUT_SECS, "idle_timeout_secs")
        ]
    );
    config.set_program("/bin/c").unwrap();
    assert_eq!(
        config.env_overrides,
        [(env::IDLE_TIMEOUT_SECS, "idle_timeout_secs")]
    );
    // spfs-fuse-macos's variable moves a TCP endpoint only, and only when
    // SPFS_AUTOSTART_ENDPOINT does not set it.
    let tcp = |endpoint: Option<&str>| {
        Config::load_with(None, |name| match name {
            env::ENDPOINT => endpoint.map(str::to_string),
            env::MACFUSE_LISTEN_ADDRESS => Some("127.0.0.1:9".into()),
            _ => None,
        })
        .unwrap()
        .env_overrides
    };
    assert_eq!(
        tcp(Some("tcp://127.0.0.1:8")),
        [(env::ENDPOINT, "endpoint")]
    );
    assert_eq!(
        tcp(Some("unix")),
        [(env::ENDPOINT, "endpoint")],
        "a Unix endpoint ignores it"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "endpoint = \"tcp://127.0.0.1:8\"\n").unwrap();
    let config = Config::load_with(Some(&file), |name| {
        (name == env::MACFUSE_LISTEN_ADDRESS).then(|| "127.0.0.1:9".to_string())
    })
    .unwrap();
    assert_eq!(config.endpoint, Endpoint::Tcp(([127, 0, 0, 1], 9).into()));
    assert_eq!(
        config.env_overrides,
        [(env::MACFUSE_LISTEN_ADDRESS, "endpoint")]
    );
}

#[test]
fn a_listen_address_with_port_0_or_off_loopback_is_refused_naming_the_variable_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "endpoint = \"tcp://127.0.0.1:8\"\n").unwrap();
    for value in ["127.0.0.1:0", "nonsense", "0.0.0.0:37738"] {
        let err = Config::load_with(Some(&file), |name| {
            (name == env::MACFUSE_LISTEN_ADDRESS).then(|| value.to_string())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains(env::MACFUSE_LISTEN_ADDRESS),
            "{err}"
        );
        assert!(err.to_string().contains(value), "{err}");
        assert!(
            err.remedies()
                .iter()
                .all(|r| !matches!(r, crate::remedy::Remedy::SetKey("endpoint"))),
            "{err}"
        );
    }
}

#[test]
fn bad_environment_value_names_the_variable() {
    let err = Config::load_with(None, |name| {
        (name == env::IDLE_TIMEOUT_SECS).then(|| "soon".to_string())
    })
    .unwrap_err();
    assert!(err.to_string().contains(env::IDLE_TIMEOUT_SECS), "{err}");
    // And how to fix it: there, not in a file.
    assert!(
        err.to_string()
            .ends_with("; fix its value, or unset it to use the config file's"),
        "{err}"
    );
}

#[test]
fn endpoint_env_gives_a_tcp_endpoint_to_the_service_as_ip_port() {
    let config = parse("endpoint = \"tcp://127.0.0.1:4100\"").unwrap();
    assert_eq!(
        config.endpoint_env.as_deref(),
        Some(env::MACFUSE_LISTEN_ADDRESS),
        "the default profile is spfs-fuse-macos's"
    );
    let vars = config.service_env();
    assert_eq!(
        vars.get(env::MACFUSE_LISTEN_ADDRESS).map(String::as_str),
        Some("127.0.0.1:4100")
    );
    let custom =
        parse("endpoint = \"tcp://127.0.0.1:4100\"\nendpoint_env = \"MY_LISTEN\"").unwrap();
    let vars = custom.service_env();
    assert_eq!(
        vars.get("MY_LISTEN").map(String::as_str),
        Some("127.0.0.1:4100")
    );
    assert!(!vars.contains_key(env::MACFUSE_LISTEN_ADDRESS));
    let none = parse("endpoint = \"tcp://127.0.0.1:4100\"\nendpoint_env = \"\"").unwrap();
    assert_eq!(none.endpoint_env, None);
    assert!(!none.service_env().contains_key(env::MACFUSE_LISTEN_ADDRESS));
    // A Unix endpoint has no IP:PORT form: nothing is set.
    let unix = parse("endpoint = \"unix\"").unwrap();
    assert!(!unix.service_env().contains_key(env::MACFUSE_LISTEN_ADDRESS));
}

#[test]
fn endpoint_env_wins_over_the_env_table_so_the_service_listens_where_we_look() {
    let config = parse(
        "endpoint = \"tcp://127.0.0.1:4100\"\n[env]\nSPFS_MACFUSE_LISTEN_ADDRESS = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    assert_eq!(
        config.service_env()[env::MACFUSE_LISTEN_ADDRESS],
        "127.0.0.1:4100"
    );
}

#[test]
fn bad_endpoint_env_is_refused_naming_the_key() {
    for bad in ["A=B", "SPFS_AUTOSTART_ENDPOINT"] {
        let err = parse(&format!("endpoint_env = {bad:?}")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("endpoint_env"), "{msg}");
        assert!(msg.contains(env::MACFUSE_LISTEN_ADDRESS), "{msg}");
    }
}

#[test]
fn every_environment_override_names_a_key_of_the_file() {
    for (name, key) in env::OVERRIDES {
        assert!(name.starts_with("SPFS_AUTOSTART_"), "{name}");
        assert!(ConfigView::keys().contains(&key), "{name} -> {key}");
    }
}

#[test]
fn environment_timeouts_are_bounded_like_the_file() {
    let err = Config::load_with(None, |name| {
        (name == env::READY_TIMEOUT_SECS).then(|| "3601".to_string())
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(env::READY_TIMEOUT_SECS) && msg.contains("at most 3600"),
        "{msg}"
    );
}

#[test]
fn the_service_gets_no_color_and_timestamps_unless_the_env_table_says_otherwise() {
    let config = parse("").unwrap();
    assert_eq!(config.service_env()["NO_COLOR"], "1");
    assert_eq!(config.service_env()["SPFS_LOG_TIMESTAMP"], "1");
    let coloured = parse("[env]\nNO_COLOR = \"\"\nSPFS_LOG_TIMESTAMP = \"0\"\n").unwrap();
    assert_eq!(coloured.service_env()["NO_COLOR"], "");
    assert_eq!(coloured.service_env()["SPFS_LOG_TIMESTAMP"], "0");
}
