//! Runs every workload once at a tiny size against a spawned server: the
//! tool keeps working. No figure is checked here; benchmarks are not tests.

use std::process::Command;

fn server_binary() -> std::path::PathBuf {
    let bench = std::path::PathBuf::from(env!("CARGO_BIN_EXE_chats3-bench"));
    let server = bench.with_file_name("chats3");
    assert!(
        server.exists(),
        "{} is missing: run `cargo test` from the workspace root",
        server.display()
    );
    server
}

/// Runs the tool with `args` against the spawned server binary and
/// returns what it printed, failing the test unless it succeeded.
fn run_bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_chats3-bench"))
        .args(args)
        .arg("--server-bin")
        .arg(server_binary())
        .output()
        .expect("run chats3-bench");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_workload_runs_at_a_tiny_size() {
    let chart = std::env::temp_dir()
        .join(format!("chats3-bench-smoke-{}.svg", std::process::id()))
        .display()
        .to_string();
    for (workload, extra) in [
        ("send", &["--concurrency", "4"][..]),
        ("fanout", &["--rates", "30,60", "--chart", &chart][..]),
        ("idle", &["--streams", "10"][..]),
        ("idle", &["--streams", "10", "--transport", "ws"][..]),
        ("history", &["--messages", "20"][..]),
        ("search", &["--messages", "20"][..]),
        ("storage", &["--rate", "50"][..]),
        (
            "rooms",
            &["--server-env", "CHATS3_ACTORS__HIBERNATE_AFTER=1s"][..],
        ),
        (
            "idle",
            &[
                "--streams",
                "10",
                "--mixed",
                "--sources",
                "2",
                "--hold",
                "1s",
            ][..],
        ),
        ("thumbnail", &[][..]),
    ] {
        let mut args = vec![workload, "--spawn", "--duration", "1s"];
        args.extend(["--rooms", "2", "--users", "3"]);
        args.extend(extra);
        let stdout = run_bench(&args);
        let json_line = stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("a JSON line");
        let parsed: serde_json::Value = serde_json::from_str(json_line).unwrap();
        assert_eq!(parsed["workload"], workload);
        if workload == "send" {
            // A number, or null when a phase this short used no measurable
            // CPU tick.
            let ratio = &parsed["figures"]["server_cpu_ratio_msg_to_health"];
            assert!(ratio.is_number() || ratio.is_null(), "{json_line}");
        }
    }
    let svg = std::fs::read_to_string(&chart).expect("the fan-out chart");
    assert!(svg.starts_with("<svg") && svg.contains("p99"), "{svg}");
    let _ = std::fs::remove_file(&chart);
}

#[test]
fn a_spawned_server_reads_the_given_config_file() {
    let config =
        std::env::temp_dir().join(format!("chats3-bench-config-{}.toml", std::process::id()));
    // Messages of at most 5 characters: every bench message is refused.
    std::fs::write(&config, "[limits]\nmax_message_len = 5\n").unwrap();
    let stdout = run_bench(&[
        "send",
        "--spawn",
        "--duration",
        "1s",
        "--concurrency",
        "2",
        "--server-config",
        config.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&config);
    let json_line = stdout.lines().find(|l| l.starts_with('{')).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(parsed["figures"]["msgs_per_s"], 0.0, "{json_line}");
    assert!(
        parsed["figures"]["errors"]["400"].as_u64().unwrap_or(0) > 0,
        "{json_line}"
    );
}

#[test]
fn a_second_spawned_binary_is_compared_run_by_run() {
    let server = server_binary();
    let stdout = run_bench(&[
        "send",
        "--spawn",
        "--duration",
        "1s",
        "--concurrency",
        "2",
        "--rooms",
        "2",
        "--users",
        "2",
        "--runs",
        "2",
        "--compare-server-bin",
        server.to_str().unwrap(),
    ]);
    let runs = run_lines(&stdout);
    assert_eq!(runs.len(), 4, "{stdout}");
    // Both servers were spawned, so both have CPU figures.
    for run in &runs {
        assert!(
            run["figures"]["server_cpu_us_per_health"].is_number(),
            "{run}"
        );
    }
    assert!(stdout.contains("== ratios A/B"), "{stdout}");
}

/// Whether `redis-server` can run here; without it the cluster smoke test
/// is skipped with a message, unless `CHATS3_REQUIRE_REDIS` is set.
fn redis_installed() -> bool {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok();
    if !installed {
        assert!(
            std::env::var("CHATS3_REQUIRE_REDIS").is_err(),
            "redis-server is required (apt-get install redis-server)"
        );
        eprintln!("skipping: redis-server is not installed");
    }
    installed
}

/// The JSON lines of the runs in a tool's output.
fn run_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with("{\"workload\"") && l.contains("\"figures\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_spawned_cluster_spreads_deliveries_over_its_instances() {
    if !redis_installed() {
        return;
    }
    let stdout = run_bench(&[
        "fanout",
        "--spawn",
        "--duration",
        "1s",
        "--rate",
        "30",
        "--rooms",
        "2",
        "--users",
        "4",
        "--instances",
        "3",
        "--compare-instances",
        "1",
    ]);
    let runs = run_lines(&stdout);
    assert_eq!(runs.len(), 2, "{stdout}");
    let (three, one) = (&runs[0]["figures"], &runs[1]["figures"]);
    assert_eq!(three["setup"]["instances"], 3, "{stdout}");
    assert_eq!(three["lost"], 0, "{stdout}");
    // Participants 1 and 2 of 4 read on other instances than the sender
    // of two messages in three: some deliveries cross.
    assert!(
        three["cross_instance_latency"]["count"].as_u64().unwrap() > 0,
        "{stdout}"
    );
    assert!(three["redis_calls_per_msg"]["total"].as_f64().unwrap() > 0.0);
    assert!(three["redis_round_trips_per_msg"].as_f64().unwrap() > 0.0);
    // One instance alone runs locally: no Redis, nothing crosses.
    assert_eq!(one["setup"]["instances"], 1, "{stdout}");
    assert!(one.get("cross_instance_latency").is_none(), "{stdout}");
    assert!(one.get("redis_calls_per_msg").is_none(), "{stdout}");
    assert!(stdout.contains("== ratios A/B"), "{stdout}");

    let stdout = run_bench(&[
        "send",
        "--spawn",
        "--duration",
        "1s",
        "--concurrency",
        "2",
        "--rooms",
        "2",
        "--users",
        "2",
        "--compare-server-env",
        "CHATS3_CLUSTER__BACKEND=redis",
    ]);
    let runs = run_lines(&stdout);
    assert_eq!(runs.len(), 2, "{stdout}");
    assert!(runs[0]["figures"].get("redis_cpu_us_per_msg").is_none());
    assert!(
        runs[1]["figures"]["redis_calls_per_msg"]["evalsha"]
            .as_f64()
            .unwrap()
            >= 1.0,
        "{stdout}"
    );
}

#[test]
fn the_cluster_mode_without_redis_server_fails_saying_so() {
    let empty = std::env::temp_dir().join(format!("chats3-bench-no-redis-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chats3-bench"))
        .args(["send", "--spawn", "--duration", "1s", "--instances", "2"])
        .arg("--server-bin")
        .arg(server_binary())
        // A PATH with nothing on it: no redis-server to find.
        .env("PATH", &empty)
        .output()
        .expect("run chats3-bench");
    let _ = std::fs::remove_dir(&empty);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("redis-server"), "{stderr}");
}

#[test]
fn only_loopback_targets_are_accepted() {
    let output = Command::new(env!("CARGO_BIN_EXE_chats3-bench"))
        .args([
            "send",
            "--base-url",
            "http://10.0.0.1:3000",
            "--duration",
            "1s",
        ])
        .output()
        .expect("run chats3-bench");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}
