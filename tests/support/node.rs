//! Running one of `tests/browser/`'s Node.js scripts from a Rust test: the
//! prerequisites it needs (said all at once, never skipped), and the run.
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

/// How long one script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fail, saying every missing piece, unless `node` runs and the npm
/// `modules` are installed under `tests/browser/node_modules`; `more` adds
/// what else the test lacks.
pub fn check_prerequisites(test: &str, modules: &[&str], more: Vec<String>) {
    let mut missing = Vec::new();
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node is not on PATH (install Node.js 18 or later)".to_owned());
    }
    for module in modules {
        let manifest = root().join(format!("tests/browser/node_modules/{module}/package.json"));
        if !manifest.exists() {
            missing.push(format!(
                "the npm module `{module}` is missing: run `npm ci --prefix tests/browser`"
            ));
        }
    }
    missing.extend(more);
    assert!(
        missing.is_empty(),
        "{test} cannot run:\n  - {}\n(.ci/run installs these)",
        missing.join("\n  - ")
    );
}

/// Run `node tests/browser/<script>` with `env`, within [`SCRIPT_TIMEOUT`].
pub async fn run_script<K, V>(script: &str, env: impl IntoIterator<Item = (K, V)>) -> Output
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let dir = root().join("tests/browser");
    let run = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .envs(env)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("{script} finishes within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("node runs {script}: {error}"))
}

/// The script's output, for a failed assertion.
pub fn printed(output: &Output) -> String {
    format!(
        "({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
