//! The real `keyward` executable: CLI commands on a zero-config data directory, secrets on
//! stdin only, `--format json`, a running server seeing CLI changes within a second, startup
//! failures that name the problem, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::contains;

const BINARY: &str = env!("CARGO_BIN_EXE_keyward");
pub(crate) const OPERATOR_TOKEN: &str = "cli-test-operator-token-81c4e2";

pub(crate) struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `keyward ARGS` in this directory, with no KEYWARD_* variables from the test's own
    /// environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.args(args).current_dir(self.path());
        for (name, _) in std::env::vars() {
            if name.starts_with("KEYWARD_") {
                command.env_remove(name);
            }
        }
        command
    }

    fn run(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        command
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let output = self.run(args, stdin, &[]);
        assert!(
            output.status.success(),
            "keyward {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "not one JSON document: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(content) =
                std::fs::read(self.path().join(format!("keyward-data/keyward.db{suffix}")))
            {
                bytes.extend(content);
            }
        }
        bytes
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn zero_config_commands_create_a_private_keyring_and_print_json() {
    let work = Workdir::new();
    let output = work.run(&["tenant", "create", "acme", "--format", "json"], None, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let tenant: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(tenant["name"], "acme");
    assert!(tenant["id"].as_str().unwrap().len() == 36);
    assert!(
        text(&output.stderr).contains("generated a new master key"),
        "{}",
        text(&output.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &str| {
            std::fs::metadata(work.path().join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("keyward-data/master.key"), 0o600);
        assert_eq!(mode("keyward-data"), 0o700);
    }
    let listed = work.json(&["tenant", "list", "--format", "json"], None);
    assert_eq!(listed["data"][0]["name"], "acme");
    let table = work.run(&["tenant", "list"], None, &[]);
    assert!(
        text(&table.stdout).starts_with("ID"),
        "{}",
        text(&table.stdout)
    );
}

#[test]
fn secrets_come_from_stdin_only_and_are_never_printed() {
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    let canary = "sk-CLICANARY0f9e8d7c6b5a4321zz";
    let output = work.run(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "team-openai",
            "--format",
            "json",
        ],
        Some(&format!("{canary}\n")),
        &[("KEYWARD_LOG_LEVEL", "trace")],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let credential: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(credential["fingerprint"], "sk-…21zz");
    assert_eq!(credential["status"], "active");
    let everything = [
        output.stdout.clone(),
        output.stderr.clone(),
        work.database_bytes(),
    ]
    .concat();
    assert!(
        text(&output.stderr).contains("TRACE")
            || text(&output.stderr).contains("trace")
            || !output.stderr.is_empty()
    );
    for needle in [canary, "CLICANARY0f9e8d7c6b5a"] {
        assert!(!contains(&everything, needle), "{needle} leaked");
    }

    // A rotation also reads stdin.
    let id = credential["id"].as_str().unwrap();
    let rotated = work.json(
        &["credential", "rotate", id, "--format", "json"],
        Some("sk-CLIROTATED00000000000000ab12"),
    );
    assert_eq!(rotated["fingerprint"], "sk-…ab12");

    // There is no way to pass a secret as an argument.
    let refused = work.run(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "x",
            "--secret",
            canary,
        ],
        Some(""),
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--secret"),
        "{}",
        text(&refused.stderr)
    );

    // An empty stdin is a clear error, not an empty secret.
    let empty = work.run(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "y",
        ],
        Some(""),
        &[],
    );
    assert!(!empty.status.success());
    assert!(
        text(&empty.stderr).contains("no secret given"),
        "{}",
        text(&empty.stderr)
    );

    // A reference reads nothing from stdin and stores only the place.
    let referenced = work.json(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "anthropic",
            "--label",
            "held",
            "--secret-ref",
            "aws-sm://prod/acme/anthropic#key",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(referenced["secret_ref"], "aws-sm://prod/acme/anthropic#key");
    assert_eq!(referenced["fingerprint"], "(held elsewhere)");
    let malformed = work.run(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "bad",
            "--secret-ref",
            "s3://bucket/key",
        ],
        None,
        &[],
    );
    assert!(!malformed.status.success());
    assert!(
        text(&malformed.stderr).contains("vault://, aws-sm:// or azure-kv://"),
        "{}",
        text(&malformed.stderr)
    );

    let listed = work.json(
        &["credential", "list", "--tenant", "acme", "--format", "json"],
        None,
    );
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let disabled = work.json(&["credential", "disable", id, "--format", "json"], None);
    assert_eq!(disabled["status"], "disabled");
}

#[test]
fn an_issued_key_is_printed_once_as_json() {
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    let issued = work.json(
        &[
            "apikey", "create", "--tenant", "acme", "--role", "admin", "--name", "ci", "--format",
            "json",
        ],
        None,
    );
    let key = issued["key"].as_str().unwrap();
    assert!(key.starts_with("kw_"));
    assert!(issued["id"].is_string());
    let listed = work.run(
        &["apikey", "list", "--tenant", "acme", "--format", "json"],
        None,
        &[],
    );
    assert!(
        !contains(&listed.stdout, &key[4..]),
        "a list must not show the key"
    );
    assert!(
        !contains(&work.database_bytes(), &key[15..]),
        "the database must hold only the hash"
    );
}

/// A `keyward serve` child process, its address parsed from its own log line.
pub(crate) struct Server {
    child: Child,
    pub(crate) address: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(work: &Workdir) -> Self {
        Self::start_with(work, &[])
    }

    pub(crate) fn start_with(work: &Workdir, env: &[(&str, &str)]) -> Self {
        let mut child = work
            .command(&["serve"])
            .envs(env.iter().copied())
            .env("KEYWARD_SERVER_LISTEN", "127.0.0.1:0")
            .env("KEYWARD_ADMIN_TOKEN", OPERATOR_TOKEN)
            .env("KEYWARD_SERVER_SHUTDOWN_GRACE", "2s")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Owned by the server value from here on, so a failed start still reaps the child.
        let mut server = Self {
            child,
            address: String::new(),
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.address.is_empty() {
            let line = server
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("keyward serve did not start"));
            let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if entry["message"] == "keyward listening" {
                server.address = format!("http://{}", entry["address"].as_str().unwrap());
            }
        }
        server
    }

    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "keyward did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_changes_reach_a_running_server_within_a_second() {
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    let issued = work.json(
        &[
            "apikey", "create", "--tenant", "acme", "--role", "admin", "--format", "json",
        ],
        None,
    );
    let (key_id, key) = (
        issued["id"].as_str().unwrap().to_owned(),
        issued["key"].as_str().unwrap().to_owned(),
    );
    let server = Server::start(&work);
    let client = reqwest::Client::new();
    let tenants: Value = client
        .get(format!("{}/admin/v1/tenants", server.address))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = tenants["data"][0]["id"].as_str().unwrap().to_owned();
    let credentials_url = format!("{}/admin/v1/tenants/{tenant}/credentials", server.address);

    // A credential added by the CLI is listed by the server.
    work.json(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "anthropic",
            "--label",
            "claude",
            "--format",
            "json",
        ],
        Some("sk-ant-cli-0123456789abcdefgh"),
    );
    let added_after = eventually(Duration::from_secs(1), || async {
        let listed: Value = client
            .get(&credentials_url)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed["data"]
            .as_array()
            .is_some_and(|data| data.len() == 1)
    })
    .await;

    // A key revoked by the CLI is refused by the server.
    work.json(&["apikey", "revoke", &key_id, "--format", "json"], None);
    let revoked_after = eventually(Duration::from_secs(1), || async {
        client
            .get(&credentials_url)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status()
            == 401
    })
    .await;
    eprintln!("propagation: credential add {added_after:?}, key revoke {revoked_after:?}");
    let logs = server.logs();
    assert!(
        logs.contains("\"request_id\""),
        "request logs carry the request id: {logs}"
    );
    assert!(
        !logs.contains(&key[15..]),
        "the platform key must not be logged"
    );

    let status = server.terminate();
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
}

/// Polls `condition` until it holds; panics if it does not within `patience`. Returns how long
/// it took.
async fn eventually<F, Fut>(patience: Duration, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < patience,
            "condition did not hold within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_wrong_or_missing_master_key_stops_startup_with_the_reason() {
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    work.json(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "main",
            "--format",
            "json",
        ],
        Some("sk-0123456789abcdefghijkl"),
    );
    let key_file = work.path().join("keyward-data/master.key");
    let original = std::fs::read(&key_file).unwrap();

    std::fs::remove_file(&key_file).unwrap();
    let missing = work.run(&["serve"], None, &[]);
    assert!(!missing.status.success());
    let message = text(&missing.stderr);
    assert!(
        message.contains("is missing") && message.contains("restore"),
        "{message}"
    );
    assert!(
        !key_file.exists(),
        "a missing key must not be replaced by a new one"
    );

    std::fs::write(
        &key_file,
        "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    let wrong = work.run(&["credential", "list", "--tenant", "acme"], None, &[]);
    assert!(!wrong.status.success());
    let message = text(&wrong.stderr);
    assert!(
        message.contains("version 1") && message.contains("key check value"),
        "{message}"
    );
    assert!(message.contains("master.key"), "{message}");

    std::fs::write(&key_file, original).unwrap();
    assert!(work
        .run(&["credential", "list", "--tenant", "acme"], None, &[])
        .status
        .success());
}

#[test]
fn an_unusable_data_directory_or_bad_config_is_a_clear_error() {
    let work = Workdir::new();
    let output = work.run(
        &["tenant", "list"],
        None,
        &[(
            "KEYWARD_STORE_URL",
            "sqlite:///proc/keyward-test/keyward.db",
        )],
    );
    assert!(!output.status.success());
    let message = text(&output.stderr);
    assert!(message.contains("/proc/keyward-test"), "{message}");

    std::fs::write(
        work.path().join("keyward.toml"),
        "[server]\nlisten = \"nowhere\"\nport = 8080\n",
    )
    .unwrap();
    let output = work.run(&["tenant", "list"], None, &[("KEYWARD_LOG_LEVEL", "loud")]);
    assert!(!output.status.success());
    let message = text(&output.stderr);
    for expected in [
        "`server.listen`",
        "unknown key `server.port`",
        "`log.level`",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }
}

fn kill(server: &mut Server, signal: &str) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap()
        .success());
    let _ = server.child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_leaves_every_upstream_call_recorded() {
    let mock = keyward_mock_provider::MockProvider::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let mock_url = format!("http://{}/v1", mock.address());
    let handle = mock.handle();
    tokio::spawn(mock.serve(std::future::pending()));
    let allow = [("KEYWARD_EGRESS_ALLOW_PRIVATE", "127.0.0.1")];

    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    let added = work.run(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "oa",
            "--base-url",
            &mock_url,
            "--format",
            "json",
        ],
        Some("sk-kill-test-0123456789abcdef"),
        &allow,
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let key = work.json(
        &["apikey", "create", "--tenant", "acme", "--format", "json"],
        None,
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut server = Server::start_with(&work, &allow);

    let client = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut response = client
            .post(format!("{}/v1/chat/completions", server.address))
            .bearer_auth(&key)
            .json(&serde_json::json!({"model": "oa/mock-slow-stream", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.chunk().await.unwrap().is_some(),
            "the stream is under way"
        );
        streams.push(response);
    }
    // A CLI command during traffic must not touch the server's pending calls.
    assert!(work.run(&["tenant", "list"], None, &[]).status.success());
    let url = format!(
        "sqlite://{}",
        work.path().join("keyward-data/keyward.db").display()
    );
    let statuses = |store: keyward_store::Store| async move {
        let tenant = store.tenant_by_name("acme").await.unwrap().unwrap();
        let page = store
            .calls(tenant.id, &keyward_store::PageRequest::default())
            .await
            .unwrap();
        page.items
            .into_iter()
            .map(|row| row.status.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(keyward_store::Store::open(&url).await.unwrap()).await,
        vec!["pending"; 5]
    );

    kill(&mut server, "-KILL");
    drop(streams);
    let upstream_calls = handle.total_calls();
    assert_eq!(upstream_calls, 5);

    // The next server start marks them interrupted, for reconciliation.
    let restarted = Server::start_with(&work, &allow);
    let statuses_after = statuses(keyward_store::Store::open(&url).await.unwrap()).await;
    assert_eq!(
        statuses_after.len() as u64,
        upstream_calls,
        "one row per upstream call"
    );
    assert!(
        statuses_after.iter().all(|status| status == "interrupted"),
        "{statuses_after:?}"
    );
    assert!(restarted.terminate().success());
}

#[test]
fn budgets_usage_and_the_audit_chain_from_the_command_line() {
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    work.json(
        &[
            "department",
            "create",
            "--tenant",
            "acme",
            "research",
            "--format",
            "json",
        ],
        None,
    );
    let budget = work.json(
        &[
            "budget",
            "set",
            "--tenant",
            "acme",
            "--department",
            "research",
            "--period",
            "month",
            "--hard",
            "250",
            "--soft",
            "200.5",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(budget["scope"], "department:research");
    assert_eq!(budget["hard_limit_usd"], "250.000000");
    assert_eq!(budget["soft_limit_usd"], "200.500000");
    assert_eq!(budget["spent_usd"], "0.000000");
    let listed = work.json(
        &["budget", "list", "--tenant", "acme", "--format", "json"],
        None,
    );
    assert_eq!(listed["data"][0]["id"], budget["id"]);

    // A soft limit above the hard one, or a float-looking amount, is refused with the reason.
    let bad = work.run(
        &[
            "budget", "set", "--tenant", "acme", "--period", "day", "--hard", "1", "--soft", "2",
        ],
        None,
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("soft limit"),
        "{}",
        text(&bad.stderr)
    );
    let bad = work.run(
        &[
            "budget", "set", "--tenant", "acme", "--period", "day", "--hard", "1e3",
        ],
        None,
        &[],
    );
    assert!(
        text(&bad.stderr).contains("decimal USD"),
        "{}",
        text(&bad.stderr)
    );

    let csv = work.run(&["usage", "--tenant", "acme", "--format", "csv"], None, &[]);
    assert!(csv.status.success(), "{}", text(&csv.stderr));
    assert!(text(&csv.stdout).starts_with("request_id,time,tenant_id,"));
    let json = work.json(
        &[
            "usage",
            "--tenant",
            "acme",
            "--group-by",
            "model",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(json, serde_json::json!({"data": [], "next_cursor": null}));

    let verified = work.json(&["audit", "verify", "--format", "json"], None);
    assert_eq!(verified["intact"], true);
    // tenant.create, department.create, budget.set.
    assert_eq!(verified["entries"], 3);
}

#[test]
fn reconcile_reads_a_bedrock_cost_and_usage_report_and_fails_on_a_difference() {
    use crate::reconcile::{fixture, seed_calls, Totals};
    use keyward_core::ProviderId;

    let work = Workdir::new();
    let tenant = work.json(&["tenant", "create", "acme", "--format", "json"], None);
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let cur = work.path().join("cur.csv");
    std::fs::write(&cur, fixture("aws-cur-bedrock.csv")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!(
        "sqlite://{}",
        work.path().join("keyward-data/keyward.db").display()
    );
    let store = runtime.block_on(keyward_store::Store::open(&url)).unwrap();
    let bedrock = ProviderId::Bedrock;
    // Called through a US inference profile and by versioned id: the report's ARNs name the
    // foundation model and the global profile; all meet on one canonical name.
    let sonnet = ("us.anthropic.claude-sonnet-4-6", None);
    let nova = ("amazon.nova-pro-v1:0", None);
    for (day, model, totals) in [
        (
            "2026-09-01",
            sonnet,
            (242_000, 200_000, 12_000, 8_000, 315_000),
        ),
        ("2026-09-01", nova, (50_000, 0, 0, 10_000, 72_000)),
        ("2026-09-02", sonnet, (175_000, 150_000, 0, 6_000, 210_000)),
        ("2026-09-02", nova, (60_000, 20_000, 0, 7_000, 58_400)),
    ] {
        let (input, cached, written, output, cost_micro_usd) = totals;
        let totals = Totals {
            input,
            cached,
            written,
            output,
            cost_micro_usd,
        };
        runtime.block_on(seed_calls(&store, &tenant, bedrock, day, model, 4, totals));
    }
    let cur_path = cur.display().to_string();
    let args = [
        "reconcile",
        "--tenant",
        "acme",
        "--provider",
        "bedrock",
        "--file",
        &cur_path,
    ];
    let report = work.json(&[&args[..], &["--format", "json"]].concat(), None);
    assert_eq!(report["lines"], 4, "{report:#}");
    assert_eq!(report["differing_lines"], 0, "{report:#}");
    assert_eq!(report["provider_cost_usd"], "0.655400");
    assert_eq!(report["keyward_cost_usd"], "0.655400");

    // One more Nova call the report does not have: the command prints the table and fails.
    let extra = Totals {
        input: 1_000,
        output: 100,
        cost_micro_usd: 1_120,
        ..Totals::default()
    };
    runtime.block_on(seed_calls(
        &store,
        &tenant,
        bedrock,
        "2026-09-02",
        nova,
        1,
        extra,
    ));
    let output = work.run(&args, None, &[]);
    assert!(!output.status.success());
    let table = text(&output.stdout);
    assert!(table.contains("2026-09-02  amazon.nova-pro"), "{table}");
    assert!(
        table.contains("difference 2026-09-02 amazon.nova-pro input_tokens: keyward 61000 provider 60000 (delta 1000)"),
        "{table}"
    );
    assert!(
        text(&output.stderr).contains("1 of 4 lines differ"),
        "{}",
        text(&output.stderr)
    );

    // A malformed model map and a file of another provider are refused with the reason.
    let bad = work.run(
        &[&args[..], &["--model-map", "Claude4.6Sonnet"]].concat(),
        None,
        &[],
    );
    assert!(
        text(&bad.stderr).contains("BILLED=MODEL"),
        "{}",
        text(&bad.stderr)
    );
    let bad = work.run(
        &[
            "reconcile",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--file",
            &cur_path,
        ],
        None,
        &[],
    );
    assert!(
        text(&bad.stderr).contains("reconcile it with provider `bedrock`"),
        "{}",
        text(&bad.stderr)
    );
}

// Multi-threaded: the CLI runs as a blocking child process while the mock answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_bases_from_the_command_line() {
    let mock = keyward_mock_provider::MockProvider::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let mock_url = format!("http://{}/v1", mock.address());
    let handle = mock.handle();
    tokio::spawn(mock.serve(std::future::pending()));
    let allow = [("KEYWARD_EGRESS_ALLOW_PRIVATE", "127.0.0.1")];
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    work.json(
        &[
            "department",
            "create",
            "--tenant",
            "acme",
            "hr",
            "--format",
            "json",
        ],
        None,
    );
    let secret = "sk-cli-kb-0123456789abcdef";
    let added = work.run(
        &[
            "credential",
            "add",
            "--tenant",
            "acme",
            "--provider",
            "openai",
            "--label",
            "emb",
            "--base-url",
            &mock_url,
            "--format",
            "json",
        ],
        Some(secret),
        &allow,
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let created = work.json(
        &[
            "kb",
            "create",
            "--tenant",
            "acme",
            "--department",
            "hr",
            "--name",
            "handbook",
            "--embedding",
            "emb/mock-embed-words",
            "--chunk-tokens",
            "64",
            "--chunk-overlap",
            "8",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(created["name"], "handbook");
    assert_eq!(created["embedding"]["model"], "mock-embed-words");

    let docs = work.path().join("docs");
    std::fs::create_dir_all(docs.join("policies")).unwrap();
    std::fs::write(
        docs.join("travel.md"),
        "# Travel\n\nBook flights through the travel portal.",
    )
    .unwrap();
    std::fs::write(
        docs.join("policies/leave.txt"),
        "Parents receive sixteen weeks of parental leave.",
    )
    .unwrap();
    std::fs::write(docs.join("logo.png"), b"\x89PNG\0\0").unwrap();
    let ingest = work.run(
        &[
            "kb", "ingest", "--tenant", "acme", "--kb", "handbook", "docs", "--format", "json",
        ],
        None,
        &allow,
    );
    assert!(ingest.status.success(), "{}", text(&ingest.stderr));
    let summary: Value = serde_json::from_slice(&ingest.stdout).unwrap();
    assert_eq!(
        (summary["ingested"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(0)),
        "{summary}"
    );
    assert_eq!(handle.calls(secret), 2, "one embedding call per document");

    let listed = work.json(
        &["kb", "list", "--tenant", "acme", "--format", "json"],
        None,
    );
    assert_eq!(listed["data"][0]["documents"], 2);
    let searched = work.run(
        &[
            "kb",
            "search",
            "--tenant",
            "acme",
            "--kb",
            "handbook",
            "weeks of parental leave",
            "--format",
            "json",
        ],
        None,
        &allow,
    );
    assert!(searched.status.success(), "{}", text(&searched.stderr));
    let hits: Value = serde_json::from_slice(&searched.stdout).unwrap();
    assert!(
        hits["data"][0]["document_name"]
            .as_str()
            .unwrap()
            .ends_with("leave.txt"),
        "{hits}"
    );
    assert_eq!(handle.calls(secret), 3);

    // A file that cannot be read as text fails on its own, with the reason; the command fails.
    std::fs::write(docs.join("bad.txt"), b"caf\xe9").unwrap();
    let bad = work.run(
        &[
            "kb",
            "ingest",
            "--tenant",
            "acme",
            "--kb",
            "handbook",
            "docs/bad.txt",
        ],
        None,
        &allow,
    );
    assert!(!bad.status.success());
    assert!(text(&bad.stdout).contains("UTF-8"), "{}", text(&bad.stdout));
}

#[test]
fn connectors_and_department_members_from_the_command_line() {
    let work = Workdir::new();
    work.json(&["tenant", "create", "acme", "--format", "json"], None);
    work.json(
        &[
            "department",
            "create",
            "--tenant",
            "acme",
            "hr",
            "--format",
            "json",
        ],
        None,
    );
    let members = work.json(
        &[
            "department",
            "members",
            "--tenant",
            "acme",
            "hr",
            "--set",
            "email:Alice@Corp.example,domain:corp.example",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(members["identities"][0], "email:alice@corp.example");
    let listed = work.json(
        &[
            "department",
            "members",
            "--tenant",
            "acme",
            "hr",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(listed["identities"].as_array().unwrap().len(), 2);
    let bad = work.run(
        &[
            "department",
            "members",
            "--tenant",
            "acme",
            "hr",
            "--set",
            "alice",
        ],
        None,
        &[],
    );
    assert!(
        !bad.status.success() && text(&bad.stderr).contains("email:NAME@DOMAIN"),
        "{}",
        text(&bad.stderr)
    );

    let secret = "CANARYcliTeamsPassword4d1c";
    let created = work.json(
        &[
            "connector",
            "create",
            "--tenant",
            "acme",
            "--kind",
            "teams",
            "--name",
            "bot",
            "--model",
            "oa/gpt-4o-mini",
            "--app-id",
            "app-1",
            "--format",
            "json",
        ],
        Some(secret),
    );
    assert_eq!(created["kind"], "teams");
    let id = created["id"].as_str().unwrap().to_owned();
    let disabled = work.json(
        &[
            "connector",
            "disable",
            "--tenant",
            "acme",
            &id,
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(disabled["status"], "disabled");
    let listed = work.run(
        &["connector", "list", "--tenant", "acme", "--format", "json"],
        None,
        &[],
    );
    assert!(!text(&listed.stdout).contains(secret));
    assert!(!contains(&work.database_bytes(), secret), "sealed at rest");
    let deleted = work.json(
        &[
            "connector",
            "delete",
            "--tenant",
            "acme",
            &id,
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(deleted["deleted"], true);
}

#[test]
fn version_names_the_commit_and_completions_need_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let version = Command::new(BINARY)
        .arg("--version")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(version.status.success());
    let text = String::from_utf8(version.stdout).unwrap();
    assert!(
        text.starts_with(&format!("keyward {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    for (shell, marker) in [
        ("bash", "_keyward()"),
        ("zsh", "#compdef keyward"),
        ("fish", "complete -c keyward"),
    ] {
        let output = Command::new(BINARY)
            .args(["completions", shell])
            .current_dir(dir.path())
            .env("KEYWARD_STORE_URL", "postgres://nowhere.invalid/none")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}");
        assert!(
            script.contains("credential"),
            "{shell} completes subcommands"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "completions create no data directory"
    );
}

fn price_file(input: &str, output: &str) -> String {
    format!(
        "[[price]]\nid = \"openai/gpt-4o-mini/2024-01-01\"\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\neffective = \"2024-01-01\"\ninput = \"{input}\"\noutput = \"{output}\"\nsource = \"https://example.com/pricing\"\nread_on = \"2026-12-08\"\n"
    )
}

#[test]
fn prices_check_validates_a_file_and_serve_refuses_a_bad_one_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, price_file("0.15", "0.60")).unwrap();
    let checked = Command::new(BINARY)
        .args([
            "prices",
            "check",
            good.to_str().unwrap(),
            "--format",
            "json",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(summary["entries"], 1);
    assert_eq!(summary["valid"], true);

    let bad = dir.path().join("bad.toml");
    let mut text = price_file("0.15", "0.60");
    text.push_str(&price_file("-1.00", "0.60").replace("2024-01-01", "2025-01-01"));
    std::fs::write(&bad, &text).unwrap();
    let refused = Command::new(BINARY)
        .args(["prices", "check", bad.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("line 11") && message.contains("input must be a decimal"),
        "{message}"
    );

    let overlapping = dir.path().join("overlap.toml");
    std::fs::write(
        &overlapping,
        format!(
            "{}\n{}",
            price_file("0.15", "0.60"),
            price_file("0.20", "0.80")
                .replace("id = \"openai/gpt-4o-mini/2024-01-01\"", "id = \"again\"")
        ),
    )
    .unwrap();
    let refused = Command::new(BINARY)
        .args(["prices", "check", overlapping.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("same effective date"));

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        price_file("0.15", "0.60").replace("provider = \"openai\"", "provider = \"acme-ai\""),
    )
    .unwrap();
    let refused = Command::new(BINARY)
        .args(["prices", "check", unknown.to_str().unwrap()])
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("line 2") && message.contains("provider"),
        "{message}"
    );

    let serve = Command::new(BINARY)
        .arg("serve")
        .current_dir(dir.path())
        .env("KEYWARD_SERVER_LISTEN", "127.0.0.1:0")
        .env("KEYWARD_PRICES_PATH", &bad)
        .output()
        .unwrap();
    assert!(!serve.status.success(), "a bad prices.path stops the start");
    let message = String::from_utf8_lossy(&serve.stderr);
    assert!(
        message.contains("prices.path") && message.contains("line 11"),
        "{message}"
    );
}
