//! Every generated LaunchAgent plist is read back by two parsers that share no code with the
//! `plist` crate: Python's `plistlib` and libplist's `plistutil` (Debian `libplist-utils`, which
//! CI installs; the test fails if it is missing rather than silently passing).
//!
//! `plistlib` dumps the parsed plist as JSON with every value tagged by its plist type, so the
//! comparison checks key names, types (boolean/integer/string/array/dict) and values exactly,
//! including XML special characters and spaces in paths, arguments and environment.
//! `plistutil` converts the XML to a binary plist, which `plistlib` then reads as binary only:
//! identical structure proves libplist parsed the XML the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use spfs_autostart_agent::{
    AgentMode, AgentSpec, DEFAULT_LABEL, LAUNCHD_SOCKET_NAME, launchd_plist, plist_program,
};

/// Reads a plist in the given format and prints it as type-tagged JSON.
const PLISTLIB_DUMP: &str = r#"
import json, plistlib, sys

def tag(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"integer": v}
    if isinstance(v, str):
        return {"string": v}
    if isinstance(v, list):
        return {"array": [tag(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": {k: tag(x) for k, x in v.items()}}
    raise SystemExit("unexpected plist value of type %s: %r" % (type(v).__name__, v))

fmt = {"xml": plistlib.FMT_XML, "binary": plistlib.FMT_BINARY}[sys.argv[2]]
with open(sys.argv[1], "rb") as f:
    print(json.dumps(tag(plistlib.load(f, fmt=fmt))))
"#;

const SPECIALS: &str = "a&b <c> \"d\" 'e'";

fn spec(mode: AgentMode) -> AgentSpec {
    let mut spec = AgentSpec::new(
        format!("/opt/{SPECIALS}/bin/spfs fuse"),
        format!("/Users/me/Library/Logs/{SPECIALS}/service.log"),
    );
    spec.args = vec![
        "service".into(),
        "/spfs".into(),
        SPECIALS.into(),
        "]]> <!-- not a comment --> &amp;".into(),
        "tab\tand\nnewline".into(),
        "".into(),
    ];
    spec.env = BTreeMap::from([
        (
            "SPFS_AUTOSTART_STATE_DIR".into(),
            format!("/var/folders/x/T/{SPECIALS}/spfs-autostart"),
        ),
        ("SPFS_AUTOSTART_IDLE_TIMEOUT_SECS".into(), "1800".into()),
        ("SPFS_AUTOSTART_ENDPOINT".into(), "unix".into()),
        ("USER_VALUE".into(), SPECIALS.into()),
    ]);
    spec.mode = mode;
    if mode == AgentMode::Socket {
        spec.socket_path = Some(PathBuf::from(format!("/tmp/{SPECIALS}/service.sock")));
    }
    spec
}

fn s(text: impl AsRef<str>) -> Value {
    json!({ "string": text.as_ref() })
}

fn path(p: &Path) -> Value {
    assert!(p.is_absolute(), "{}", p.display());
    s(p.to_str().unwrap())
}

/// The plist the spec must produce, in plistlib's type-tagged JSON.
fn expected(spec: &AgentSpec) -> Value {
    let argv0 = match &spec.bundle_program {
        Some(bundle) => s(bundle),
        None => path(&spec.program),
    };
    let argv = std::iter::once(argv0)
        .chain(spec.args.iter().map(s))
        .collect::<Vec<_>>();
    let env = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), s(v)))
        .collect::<serde_json::Map<_, _>>();
    let mut dict = json!({
        "Label": s(&spec.label),
        "ProgramArguments": { "array": argv },
        "EnvironmentVariables": { "dict": env },
        "StandardOutPath": path(&spec.log_file),
        "StandardErrorPath": path(&spec.log_file),
        "ProcessType": s("Interactive"),
    });
    let map = dict.as_object_mut().unwrap();
    match &spec.bundle_program {
        Some(bundle) => {
            // One bundled plist serves every user: no per-user log path.
            map.remove("StandardOutPath");
            map.remove("StandardErrorPath");
            map.insert("BundleProgram".into(), s(bundle))
        }
        None => map.insert("Program".into(), path(&spec.program)),
    };
    match spec.mode {
        AgentMode::Always => {
            map.insert("RunAtLoad".into(), json!({ "bool": true }));
            map.insert(
                "KeepAlive".into(),
                json!({ "dict": { "SuccessfulExit": { "bool": false } } }),
            );
        }
        AgentMode::Socket => {
            let socket = json!({ "dict": {
                "SockPathName": path(spec.socket_path.as_deref().unwrap()),
                "SockPathMode": { "integer": 0o600 },
                "SockFamily": s("Unix"),
                "SockType": s("stream"),
            }});
            map.insert(
                "Sockets".into(),
                json!({ "dict": { LAUNCHD_SOCKET_NAME: socket } }),
            );
        }
    }
    json!({ "dict": dict })
}

fn plistlib(file: &Path, format: &str) -> Value {
    let output = Command::new("python3")
        .arg("-c")
        .arg(PLISTLIB_DUMP)
        .arg(file)
        .arg(format)
        .output()
        .unwrap_or_else(|e| panic!("could not run python3 (needed for plistlib): {e}"));
    assert!(
        output.status.success(),
        "plistlib could not read {} as {format}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// libplist's `plistutil` converts the XML to binary. It exits 0 even when it cannot parse its
/// input (it only prints "ERROR: ..."), so the output file's binary magic is checked too.
fn plistutil_to_binary(xml: &Path) -> PathBuf {
    let bin = xml.with_extension("bin");
    let output = match Command::new("plistutil")
        .arg("-i")
        .arg(xml)
        .args(["-f", "bin", "-o"])
        .arg(&bin)
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!(
            "could not run `plistutil` ({e}); it comes from the Debian package `libplist-utils` \
             (apt-get install -y libplist-utils), which CI installs"
        ),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let bytes = std::fs::read(&bin).unwrap_or_default();
    assert!(
        output.status.success() && !stderr.contains("ERROR") && bytes.starts_with(b"bplist00"),
        "plistutil could not parse {}: status {}, stderr {stderr:?}",
        xml.display(),
        output.status
    );
    bin
}

fn check(name: &str, spec: &AgentSpec) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.plist"));
    let xml = launchd_plist(spec).unwrap();
    std::fs::write(&file, &xml).unwrap();

    let text = String::from_utf8(xml).unwrap();
    assert!(text.starts_with("<?xml"), "{text}");
    if spec.program.to_string_lossy().contains(SPECIALS) {
        assert!(
            text.contains("a&amp;b &lt;c&gt;"),
            "specials are escaped: {text}"
        );
    }

    let want = expected(spec);
    assert_eq!(plistlib(&file, "xml"), want, "plistlib, {name}:\n{text}");
    let bin = plistutil_to_binary(&file);
    assert_eq!(plistlib(&bin, "binary"), want, "plistutil, {name}:\n{text}");
}

#[test]
fn always_mode_plist_round_trips_through_plistlib_and_plistutil() {
    let spec = spec(AgentMode::Always);
    assert_eq!(spec.label, DEFAULT_LABEL);
    check("always", &spec);
}

#[test]
fn socket_mode_plist_round_trips_through_plistlib_and_plistutil() {
    check("socket", &spec(AgentMode::Socket));
}

#[test]
fn bundle_program_plist_round_trips_through_plistlib_and_plistutil() {
    let mut spec = spec(AgentMode::Always);
    spec.bundle_program = Some("Contents/MacOS/spfs-fuse-macos".into());
    check("bundle", &spec);
    let mut odd = self::spec(AgentMode::Always);
    odd.bundle_program = Some("Contents/MacOS/spfs fuse & co".into());
    check("bundle-odd-name", &odd);
    // One bundled plist serves every user; a socket path is one user's.
    let mut socket = self::spec(AgentMode::Socket);
    socket.bundle_program = Some("Contents/MacOS/spfs-fuse-macos".into());
    assert!(launchd_plist(&socket).is_err());
}

#[test]
fn plist_without_arguments_or_environment_still_has_every_key() {
    let spec = AgentSpec::new("/usr/local/bin/spfs-fuse-macos", "/tmp/service.log");
    check("minimal", &spec);
}

/// The plist the app bundles (`SMAppService.agent(plistName:)`) is named and labelled
/// `APP_LABEL`, apart from the CLI's agent, so neither acts on the other's job.
#[test]
fn the_apps_bundled_plist_has_its_own_label() {
    let resources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../macos-app/Resources");
    let bundled = resources.join(format!("{}.plist", spfs_autostart_agent::APP_LABEL));
    let parsed = plistlib(&bundled, "xml");
    assert_eq!(
        parsed["dict"]["Label"],
        s(spfs_autostart_agent::APP_LABEL),
        "{parsed}"
    );
    assert_ne!(spfs_autostart_agent::APP_LABEL, DEFAULT_LABEL);
    let swift =
        std::fs::read_to_string(resources.join("../Sources/SpfsMenu/App/AppEnvironment.swift"))
            .unwrap();
    let plist_name = format!("\"{}.plist\"", spfs_autostart_agent::APP_LABEL);
    assert!(
        swift.contains(&plist_name),
        "the app registers {plist_name}"
    );
}

/// The program an installed plist runs reads back as written, special
/// characters and all; a bundled plist (no path) and what is no plist name
/// none.
#[test]
fn the_program_of_a_plist_reads_back() {
    for mode in [AgentMode::Always, AgentMode::Socket] {
        let spec = spec(mode);
        let plist = launchd_plist(&spec).unwrap();
        assert_eq!(
            plist_program(&plist),
            Some(spec.program.clone()),
            "{mode:?}"
        );
    }
    let mut bundled = spec(AgentMode::Always);
    bundled.bundle_program = Some("Contents/MacOS/spfs-fuse-macos".into());
    assert_eq!(plist_program(&launchd_plist(&bundled).unwrap()), None);
    assert_eq!(plist_program(b"not a plist"), None);
}
