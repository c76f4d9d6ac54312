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

#[test]
fn every_workload_runs_at_a_tiny_size() {
    let server = server_binary();
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
        ("rooms", &[][..]),
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
        let output = Command::new(env!("CARGO_BIN_EXE_chats3-bench"))
            .arg(workload)
            .args([
                "--spawn",
                "--duration",
                "1s",
                "--rooms",
                "2",
                "--users",
                "3",
            ])
            .arg("--server-bin")
            .arg(&server)
            .args(extra)
            .output()
            .expect("run chats3-bench");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{workload}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
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
    let output = Command::new(env!("CARGO_BIN_EXE_chats3-bench"))
        .args(["send", "--spawn", "--duration", "1s", "--concurrency", "2"])
        .arg("--server-bin")
        .arg(server_binary())
        .arg("--server-config")
        .arg(&config)
        .output()
        .expect("run chats3-bench");
    let _ = std::fs::remove_file(&config);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
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
    let output = Command::new(env!("CARGO_BIN_EXE_chats3-bench"))
        .args(["send", "--spawn", "--duration", "1s", "--concurrency", "2"])
        .args(["--rooms", "2", "--users", "2", "--runs", "2"])
        .arg("--server-bin")
        .arg(&server)
        .arg("--compare-server-bin")
        .arg(&server)
        .output()
        .expect("run chats3-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let runs: Vec<serde_json::Value> = stdout
        .lines()
        // One line per run; the summaries' lines have no "figures".
        .filter(|l| l.starts_with("{\"workload\"") && l.contains("\"figures\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
