//! The command line: version, help, config validation before any port is bound (exit 64,
//! naming the field), and every example config in config/ loads.

use std::path::Path;
use std::process::Command;

fn vkube(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vkube"))
        .args(args)
        .output()
        .expect("run vkube")
}

#[test]
fn version_and_help() {
    let out = vkube(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("vkube {}", env!("CARGO_PKG_VERSION"))
    );
    let help = String::from_utf8_lossy(&vkube(&["--help"]).stdout).into_owned();
    for flag in [
        "--config",
        "--data-dir",
        "--listen",
        "--tls-san",
        "--kubeconfig-out",
        "server",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}

#[test]
fn bad_configs_exit_64_naming_the_field_before_binding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("server:\n  listen: not-an-address\n", "server.listen"),
        ("server:\n  lisen: 127.0.0.1:1\n", "lisen"),
        (
            "authentication:\n  tokens:\n  - {token: short, user: a}\n",
            "authentication.tokens[0].token",
        ),
        ("raft: [1, 2]\n", "raft"),
        (
            "server:\n  advertiseAddress: vkube.example.com\n",
            "server.advertiseAddress",
        ),
        (
            "server:\n  advertiseAddress: 0.0.0.0:7443\n",
            "server.advertiseAddress",
        ),
    ];
    for (i, (yaml, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&path, yaml).expect("write");
        let data = dir.path().join(format!("data{i}"));
        let out = vkube(&[
            "server",
            "--config",
            path.to_str().expect("utf8"),
            "--data-dir",
            data.to_str().expect("utf8"),
        ]);
        assert_eq!(out.status.code(), Some(64), "{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(field),
            "{yaml}: stderr does not name {field}: {err}"
        );
        assert!(
            !data.exists(),
            "nothing may be created before the config is valid"
        );
    }
    let out = vkube(&[
        "--listen",
        "nowhere:x",
        "--data-dir",
        dir.path().join("d").to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = vkube(&[
        "--config",
        dir.path().join("missing.yaml").to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn every_example_config_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let file =
            vkube::config::load_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        vkube::config::validate(file, &vkube::config::ServerArgs::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the example configs in {}",
        dir.display()
    );
}
