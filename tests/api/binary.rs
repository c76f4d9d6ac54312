//! The `chats3` binary's configuration handling.

use std::process::Command;

fn run_with(envs: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chats3"))
        .args(args)
        .envs(envs.iter().copied())
        .env("CHATS3_SERVER__PORT", "0")
        .output()
        .expect("run chats3");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_configuration_prints_one_line_and_exits_1() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 4] = [
        (&[("CHATS3_SERVER__PROT", "1")], &[], "prot"),
        (
            &[("CHATS3_ACTORS__FLUSH_INTERVAL", "soon")],
            &[],
            "flush_interval",
        ),
        (&[("CHATS3_STORAGE__BACKEND", "s3")], &[], "bucket"),
        (
            &[],
            &["--config", "/nonexistent/chats3.toml"],
            "does not exist",
        ),
    ];
    for (envs, args, needle) in cases {
        let (code, stderr) = run_with(envs, args);
        assert_eq!(code, 1, "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.to_lowercase().contains(needle), "{stderr}");
    }
}
