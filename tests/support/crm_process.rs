//! The one way tests launch the built `crm` binary: [`Crm`] builds the
//! command (arguments, environment, database), [`RunningCrm`] is a
//! `crm serve` that has printed its address and is killed when dropped.
//! Shared by the `api` and `browser` test targets through `#[path]`.
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long `crm serve` may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A `crm` command. Nothing leaks in from the test's own environment that
/// selects a database or a signing secret; logs at `warn` unless set.
pub struct Crm {
    command: Command,
    args: Vec<OsString>,
}

impl Crm {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crm"));
        command
            .env_remove("DATABASE_URL")
            .env_remove("CRM_JWT_SECRET")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        Self {
            command,
            args: Vec::new(),
        }
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn envs<'a>(mut self, vars: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Self {
        self.command.envs(vars.into_iter().copied());
        self
    }

    /// `DATABASE_URL`: a test's scratch database.
    pub fn database(self, url: &str) -> Self {
        self.env("DATABASE_URL", url)
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Run to completion and collect its output.
    pub async fn output(mut self) -> Output {
        self.command
            .args(&self.args)
            .output()
            .await
            .expect("crm runs")
    }

    /// Run to completion, asserting success; its stdout.
    pub async fn stdout(self) -> String {
        let out = self.output().await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `crm serve` on a free loopback port (unless `--bind` says
    /// otherwise), once it has printed its address; its stderr goes to the
    /// test's.
    pub async fn serve(self) -> RunningCrm {
        self.start(false).await
    }

    /// Like [`serve`](Self::serve), its stderr lines collected from the
    /// start in [`RunningCrm::stderr`].
    pub async fn serve_capturing_stderr(self) -> RunningCrm {
        self.start(true).await
    }

    async fn start(mut self, capture_stderr: bool) -> RunningCrm {
        let mut child = self
            .command
            .env("CRM_BIND", "127.0.0.1:0")
            .arg("serve")
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(if capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("crm serve starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = stderr.clone();
            let mut lines = BufReader::new(pipe).lines();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().expect("stderr lines").push(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let (printed, base) = tokio::time::timeout(START_DEADLINE, async {
            let mut printed = Vec::new();
            while let Some(line) = lines.next_line().await.expect("read crm serve output") {
                if let Some(url) = line.strip_prefix("GraphQL:") {
                    let base = url.trim().trim_end_matches("/graphql").to_owned();
                    return (printed, base);
                }
                printed.push(line);
            }
            panic!("crm serve exited before printing its address");
        })
        .await
        .expect("crm serve printed its address in time");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RunningCrm {
            child,
            base,
            printed,
            stderr,
        }
    }
}

/// A running `crm serve`, killed when dropped.
pub struct RunningCrm {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// What it printed before its address (the development tokens).
    pub printed: Vec<String>,
    /// Its stderr lines so far, when captured.
    pub stderr: Arc<Mutex<Vec<String>>>,
}
