//! Test harness: starts the real `vkube` binary on a loopback port with its own data dir and
//! drives it with the real `kubectl`, raw HTTPS requests and a kube-rs client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running vkube process.
pub struct Server {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    command: &'static str,
    extra_args: Vec<String>,
}

/// A kubectl serving a local port; stopped when dropped.
pub struct Serving {
    child: Child,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    pub port: u16,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("addr").port()
}

impl Server {
    /// Starts a server with a fresh data dir.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_command("server", extra)
    }

    /// Starts `vkube sim` (a simulated physical cluster) with extra flags.
    #[allow(dead_code)]
    pub fn start_sim(extra: &[&str]) -> Server {
        Server::start_command("sim", extra)
    }

    fn start_command(command: &'static str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Server {
            dir,
            child: None,
            port: free_port(),
            command,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_vkube"))
            .arg(self.command)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--kubeconfig-out")
            .arg(self.kubeconfig())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vkube");
        self.child = Some(child);
        let port = self.port;
        let kc = self.kubeconfig();
        wait_for(Duration::from_secs(20), "vkube to serve", || {
            if !kc.exists() {
                return None;
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGKILL, no shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }

    /// SIGKILL then start again on the same data dir and port.
    pub fn restart_after_kill9(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// `kubectl` with this server's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// `kubectl` with stdin.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.kubectl_env(&[], args, stdin)
    }

    /// `kubectl` with extra environment variables and stdin.
    pub fn kubectl_env(&self, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.kubectl_command();
        cmd.envs(env.iter().copied())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// A `kubectl` command with this server's kubeconfig and its own cache dir.
    pub fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        cmd
    }

    /// Starts a long-running kubectl (`proxy`, `port-forward`) whose first line of output is
    /// `prefix` followed by the local port it serves on.
    pub fn kubectl_serving(&self, env: &[(&str, &str)], args: &[&str], prefix: &str) -> Serving {
        use std::io::{BufRead, BufReader, Read};
        let mut child = self
            .kubectl_command()
            .envs(env.iter().copied())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        let read = stdout.read_line(&mut first);
        let port = first.strip_prefix(prefix).and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u16>().ok()
        });
        let Some(port) = port else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            let _ = child.wait();
            panic!("kubectl {args:?} did not start serving ({read:?}): {first}{err}");
        };
        // Its later output ("Handling connection for …") must find the pipe open.
        Serving {
            child,
            _stdout: stdout,
            port,
        }
    }

    /// A TokenReview of `token` by this server, asserted to be created: its answer.
    pub fn token_review(&self, token: &str) -> serde_json::Value {
        let review = serde_json::json!({"apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview", "spec": {"token": token}});
        let (code, out) = self.raw(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some("application/json"),
            review.to_string().as_bytes(),
        );
        assert_eq!(code, 201, "{out}");
        out
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with `stdin` and asserts success; returns stdout.
    pub fn kubectl_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, Some(stdin));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure; returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A kube-rs client for this server.
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig()).await
    }

    /// A raw HTTPS call with the admin client certificate: (status, body).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        raw_request(
            &self.kubeconfig(),
            self.port,
            method,
            path,
            content_type,
            body,
            true,
        )
    }

    /// A raw HTTPS call without any credentials.
    pub fn raw_anonymous(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        raw_request(
            &self.kubeconfig(),
            self.port,
            method,
            path,
            None,
            &[],
            false,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kube config");
    kube::Client::try_from(cfg).expect("kube client")
}

fn kubeconfig_field(kubeconfig: &Path, field: &str) -> Vec<u8> {
    use base64::Engine;
    let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in kubeconfig"));
    let b64 = line.split_once(':').expect("colon").1.trim();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

/// Sends one HTTP/1.1 request over TLS (rustls, trusting the cluster CA) and reads the reply.
pub fn raw_request(
    kubeconfig: &Path,
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    with_cert: bool,
) -> (u16, serde_json::Value) {
    use rustls_pki_types::pem::PemObject;
    use std::io::{Read, Write};
    use std::sync::Arc;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = kubeconfig_field(kubeconfig, "certificate-authority-data");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("ca pem")).expect("add ca");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = if with_cert {
        let cert = kubeconfig_field(kubeconfig, "client-certificate-data");
        let key = kubeconfig_field(kubeconfig, "client-key-data");
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&cert)
            .map(|c| c.expect("cert pem"))
            .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&key).expect("key pem");
        builder
            .with_client_auth_cert(certs, key)
            .expect("client auth")
    } else {
        builder.with_no_client_auth()
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("tls client");
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).expect("write head");
    tls.write_all(body).expect("write body");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let body_text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let json = serde_json::from_str(&body_text).unwrap_or(serde_json::Value::String(body_text));
    (status, json)
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
