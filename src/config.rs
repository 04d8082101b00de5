//! The deployment's one config file, the command-line overlay, and validation.
//!
//! Flow: [`FileConfig`] (serde, from YAML) + [`ServerArgs`] (clap) → [`validate`] →
//! [`ValidatedConfig`]. Nothing binds a port or touches the data dir before `validate` has
//! passed; `main` exits with code 64 (EX_USAGE) when it fails, naming the offending field.
//!
//! Environment variables are read in exactly one place: clap's `env = …` attributes on
//! [`ServerArgs`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// Exit code for a bad config or bad flags (sysexits.h `EX_USAGE`).
pub const EXIT_BAD_CONFIG: i32 = 64;

/// Errors of loading and validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid YAML for the schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the field.
        message: String,
    },
    /// A field has a value that cannot work.
    #[error("invalid config: {field}: {message}")]
    Invalid {
        /// The field path, as written in the config file (or the flag).
        field: String,
        /// What is wrong and what would work.
        message: String,
    },
}

/// `vkube`: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "vkube",
    version,
    about = "A virtual Kubernetes control plane: a Raft-replicated Kubernetes API whose pods run in physical clusters",
    long_about = None
)]
pub struct Cli {
    /// What to run; without one, `vkube` runs the server.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server flags, also accepted without the `server` subcommand.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the vkube API server (the default).
    Server(ServerArgs),
    /// Issue a client certificate for a user from the cluster CA and print a kubeconfig.
    Kubeconfig(KubeconfigArgs),
    /// Run a simulated physical cluster: a vkube API server with simulated nodes, a
    /// scheduler and kubelets (for demos and tests; pods never run).
    Sim(SimArgs),
    /// Run a demo: a virtual cluster wired to two simulated physical clusters (`east`,
    /// `west`) on loopback, with its kubeconfig written to ./kubeconfig.yaml.
    Demo(crate::demo::DemoArgs),
}

/// Flags of `vkube sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Server flags.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The cluster's name: nodes are `<name>-node-<i>`.
    #[arg(long, default_value = "sim")]
    pub name: String,
    /// How many simulated nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// CPU of each node (a quantity: `8`, `3500m`).
    #[arg(long, default_value = "8")]
    pub node_cpu: String,
    /// Memory of each node (a quantity: `32Gi`).
    #[arg(long, default_value = "32Gi")]
    pub node_memory: String,
    /// Pods per node.
    #[arg(long, default_value_t = 110)]
    pub node_pods: i64,
    /// Feature gates as kube-apiserver takes them (`Name=true|false`, comma-separated). The
    /// one known is `InPlacePodVerticalScaling`: `=false` serves no `pods/resize` and keeps
    /// pod resources immutable, as a cluster before 1.33 does.
    #[arg(long, value_name = "GATES")]
    pub feature_gates: Option<String>,
}

/// The simulation `args` asks for, checked.
pub fn sim_settings(args: &SimArgs) -> Result<crate::sim::SimSettings, ConfigError> {
    let bad = |field: &str, message: String| ConfigError::Invalid {
        field: field.into(),
        message,
    };
    if args.nodes == 0 || args.nodes > 1000 {
        return Err(bad(
            "--nodes",
            format!("{} is not between 1 and 1000", args.nodes),
        ));
    }
    if !crate::resources::validation::is_dns1123_label(&format!("{}-node-0", args.name)).is_empty()
    {
        return Err(bad(
            "--name",
            format!(
                "{:?} does not make valid node names (lower-case letters, digits and '-')",
                args.name
            ),
        ));
    }
    let cpu_millis = crate::scheduler::parse_quantity(&args.node_cpu, 1000);
    if cpu_millis <= 0 {
        return Err(bad(
            "--node-cpu",
            format!("{:?} is not a positive quantity", args.node_cpu),
        ));
    }
    let memory_bytes = crate::scheduler::parse_quantity(&args.node_memory, 1);
    if memory_bytes <= 0 {
        return Err(bad(
            "--node-memory",
            format!("{:?} is not a positive quantity", args.node_memory),
        ));
    }
    if args.node_pods <= 0 {
        return Err(bad(
            "--node-pods",
            format!("{} is not positive", args.node_pods),
        ));
    }
    let mut in_place_resize = true;
    for gate in args.feature_gates.iter().flat_map(|g| g.split(',')) {
        let gate = gate.trim();
        if gate.is_empty() {
            continue;
        }
        let Some((name, value)) = gate.split_once('=') else {
            return Err(bad(
                "--feature-gates",
                format!("missing bool value for {gate}"),
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        // Go's strconv.ParseBool, which kube-apiserver's flag uses.
        let on = match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            _ => {
                return Err(bad(
                    "--feature-gates",
                    format!(
                        "invalid value of {name}={value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ),
                ));
            }
        };
        match name {
            "InPlacePodVerticalScaling" => in_place_resize = on,
            _ => {
                return Err(bad(
                    "--feature-gates",
                    format!("unrecognized feature gate: {name}"),
                ));
            }
        }
    }
    Ok(crate::sim::SimSettings {
        name: args.name.clone(),
        nodes: args.nodes,
        cpu_millis,
        memory_bytes,
        max_pods: args.node_pods,
        in_place_resize,
    })
}

/// Flags of `vkube kubeconfig`.
#[derive(Debug, Clone, Args)]
pub struct KubeconfigArgs {
    /// The user name (the certificate's CN).
    #[arg(long)]
    pub user: String,
    /// A group (the certificate's O); repeatable, at most two.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The data dir of the vkube whose CA signs the certificate.
    #[arg(long, value_name = "DIR", default_value = "./vkube-data")]
    pub data_dir: PathBuf,
    /// The API server URL written into the kubeconfig.
    #[arg(long, value_name = "URL", default_value = "https://127.0.0.1:7443")]
    pub server: String,
    /// Write the kubeconfig here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Flags of `vkube server`. Each overrides the same setting of the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// The config file (YAML); see config/ for examples.
    #[arg(long, env = "VKUBE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where state, certificates and the Raft log live [default: ./vkube-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the Kubernetes API (HTTPS) [default: 0.0.0.0:7443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Extra subject alternative name of the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_san: Vec<String>,
    /// The API address pods in physical clusters reach vkube at (their
    /// KUBERNETES_SERVICE_HOST/PORT, the `kubernetes` Endpoints) [default: the listen address].
    #[arg(long, value_name = "IP:PORT")]
    pub advertise_address: Option<String>,
    /// Where to write the admin kubeconfig [default: ./kubeconfig.yaml].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
    /// The kubeconfig of one physical cluster whose nodes run the virtual pods (the
    /// one-cluster form of `clusters:` in the config file).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: its context [default: the current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// With --kubeconfig: the namespace of the physical cluster that holds the virtual pods
    /// [default: vkube].
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// This virtual cluster's id, part of every name it writes to physical clusters
    /// [default: vkube].
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

/// The config file as written (every field optional; flags and defaults fill the rest).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileConfig {
    /// The API server.
    #[serde(default)]
    pub server: ServerSection,
    /// Who may call the API.
    #[serde(default)]
    pub authentication: AuthSection,
    /// The Raft group.
    #[serde(default)]
    pub raft: RaftSection,
    /// This virtual cluster's id (part of every name written to physical clusters).
    pub id: Option<String>,
    /// The physical clusters that run the virtual pods.
    #[serde(default)]
    pub clusters: Vec<ClusterSection>,
}

/// One entry of `clusters:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSection {
    /// The cluster's name (its virtual node's name).
    pub name: String,
    /// Path of its kubeconfig.
    pub kubeconfig: PathBuf,
    /// The kubeconfig context [default: current].
    pub context: Option<String>,
    /// Target namespace [default: vkube].
    pub namespace: Option<String>,
    /// Create the namespace if missing [default: true].
    pub create_namespace: Option<bool>,
    /// Labels of its virtual node (region, zone, anything).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Taints of its virtual node.
    #[serde(default)]
    pub taints: Vec<TaintSection>,
}

/// A taint.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaintSection {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// `server:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSection {
    /// `server.listen`.
    pub listen: Option<String>,
    /// `server.dataDir`.
    pub data_dir: Option<PathBuf>,
    /// `server.tlsSANs`.
    #[serde(default, rename = "tlsSANs")]
    pub tls_sans: Vec<String>,
    /// `server.kubeconfigOut`.
    pub kubeconfig_out: Option<PathBuf>,
    /// `server.advertiseAddress`: where pods in physical clusters reach this API.
    pub advertise_address: Option<String>,
    /// `server.watchWindow`: how many past events watches may resume from.
    pub watch_window: Option<usize>,
    /// `server.serviceCIDR`: where Service ClusterIPs come from.
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: Option<String>,
    /// `server.nodePortRange`: where Service node ports come from.
    pub node_port_range: Option<String>,
}

/// `authentication:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthSection {
    /// Static bearer tokens.
    #[serde(default)]
    pub tokens: Vec<StaticToken>,
}

/// One static bearer token and the identity it stands for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticToken {
    /// The secret sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// The user name.
    pub user: String,
    /// The groups (`system:masters` has every right).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `raft:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RaftSection {
    /// `raft.nodeId`: this node's id, never reused after its data is wiped.
    pub node_id: Option<u64>,
    /// `raft.heartbeatMillis`.
    pub heartbeat_millis: Option<u64>,
    /// `raft.electionTimeoutMillis`: the lower bound; the upper is twice that.
    pub election_timeout_millis: Option<u64>,
    /// `raft.snapshotEvery`: build a snapshot (and compact the log) after this many entries.
    pub snapshot_every: Option<u64>,
}

/// A configuration that passed [`validate`]: every value is usable.
#[derive(Debug, Clone)]
pub struct ValidatedConfig {
    /// Address of the HTTPS API.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Extra SANs of the serving certificate.
    pub tls_sans: Vec<String>,
    /// The API address advertised to pods (`server.advertiseAddress`), if not the listen one.
    pub advertise: Option<SocketAddr>,
    /// Where the admin kubeconfig is written.
    pub kubeconfig_out: PathBuf,
    /// Static bearer tokens.
    pub tokens: Vec<StaticToken>,
    /// Events kept for resuming watches.
    pub watch_window: usize,
    /// Service ClusterIP range (IPv4 CIDR).
    pub service_cidr: String,
    /// Service node port range (`30000-32767`).
    pub node_port_range: String,
    /// Raft settings.
    pub raft: RaftSettings,
    /// Set for `vkube sim`: the simulated nodes, scheduler and kubelets to run.
    pub sim: Option<crate::sim::SimSettings>,
    /// This virtual cluster's id.
    pub id: String,
    /// The physical clusters, checked (their kubeconfigs load).
    pub clusters: Vec<crate::syncer::PhysicalCluster>,
}

/// Validated Raft settings.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    /// This node's id.
    pub node_id: u64,
    /// Heartbeat interval.
    pub heartbeat_millis: u64,
    /// Election timeout lower bound.
    pub election_timeout_millis: u64,
    /// Entries between snapshots.
    pub snapshot_every: u64,
}

/// Reads the config file named by `args` (if any).
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut file = parse_file(path, &text)?;
    // A cluster's kubeconfig path is relative to the config file.
    if let Some(dir) = path.parent() {
        for c in &mut file.clusters {
            if c.kubeconfig.is_relative() {
                c.kubeconfig = dir.join(&c.kubeconfig);
            }
        }
    }
    Ok(file)
}

/// Parses config file text.
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Loads the file named by `--config` (if any) and overlays the flags, then validates.
pub fn resolve(args: &ServerArgs) -> Result<ValidatedConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    validate(file, args)
}

/// Overlays `args` on `file`, fills defaults and checks every value.
pub fn validate(file: FileConfig, args: &ServerArgs) -> Result<ValidatedConfig, ConfigError> {
    let (listen_text, listen_field) = match (&args.listen, &file.server.listen) {
        (Some(l), _) => (l.clone(), "--listen"),
        (None, Some(l)) => (l.clone(), "server.listen"),
        (None, None) => ("0.0.0.0:7443".to_string(), "server.listen"),
    };
    let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
        field: listen_field.into(),
        message: format!(
            "{listen_text:?} is not an address of the form IP:PORT (for example 0.0.0.0:7443)"
        ),
    })?;

    let data_dir = args
        .data_dir
        .clone()
        .or(file.server.data_dir)
        .unwrap_or_else(|| PathBuf::from("./vkube-data"));
    if data_dir.as_os_str().is_empty() {
        return Err(invalid("server.dataDir", "must not be empty"));
    }
    let kubeconfig_out = args
        .kubeconfig_out
        .clone()
        .or(file.server.kubeconfig_out)
        .unwrap_or_else(|| PathBuf::from("./kubeconfig.yaml"));
    if kubeconfig_out.as_os_str().is_empty() {
        return Err(invalid("server.kubeconfigOut", "must not be empty"));
    }

    let mut tls_sans = file.server.tls_sans;
    tls_sans.extend(args.tls_san.iter().cloned());
    for (i, san) in tls_sans.iter().enumerate() {
        if san.is_empty() || san.contains(char::is_whitespace) || san.contains('/') {
            return Err(invalid(
                &format!("server.tlsSANs[{i}]"),
                &format!("{san:?} is neither a DNS name nor an IP address"),
            ));
        }
    }
    tls_sans.sort();
    tls_sans.dedup();

    let watch_window = file.server.watch_window.unwrap_or(10_000);
    if !(100..=10_000_000).contains(&watch_window) {
        return Err(invalid(
            "server.watchWindow",
            "must be between 100 and 10000000 events",
        ));
    }

    let service_cidr = file
        .server
        .service_cidr
        .unwrap_or_else(|| "10.96.0.0/12".to_string());
    let node_port_range = file
        .server
        .node_port_range
        .unwrap_or_else(|| "30000-32767".to_string());
    crate::controllers::services::ServiceAllocators::new(&service_cidr, &node_port_range).map_err(|e| {
        invalid(
            "server.serviceCIDR / server.nodePortRange",
            &format!("{e} (expected an IPv4 CIDR such as 10.96.0.0/12 and a range such as 30000-32767)"),
        )
    })?;
    let mut seen = std::collections::HashSet::new();
    for (i, t) in file.authentication.tokens.iter().enumerate() {
        let field = format!("authentication.tokens[{i}]");
        if t.token.len() < 16 {
            return Err(invalid(
                &format!("{field}.token"),
                "must be at least 16 characters",
            ));
        }
        if t.token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                &format!("{field}.token"),
                "must not contain whitespace",
            ));
        }
        if t.user.is_empty() {
            return Err(invalid(&format!("{field}.user"), "must not be empty"));
        }
        if !seen.insert(t.token.as_str()) {
            return Err(invalid(
                &format!("{field}.token"),
                "is the same as an earlier token",
            ));
        }
    }

    let node_id = file.raft.node_id.unwrap_or(1);
    if node_id == 0 {
        return Err(invalid("raft.nodeId", "must be 1 or more"));
    }
    let heartbeat_millis = file.raft.heartbeat_millis.unwrap_or(100);
    let election_timeout_millis = file.raft.election_timeout_millis.unwrap_or(1000);
    if !(10..=10_000).contains(&heartbeat_millis) {
        return Err(invalid(
            "raft.heartbeatMillis",
            "must be between 10 and 10000",
        ));
    }
    if election_timeout_millis <= heartbeat_millis * 2 {
        return Err(invalid(
            "raft.electionTimeoutMillis",
            "must be more than twice raft.heartbeatMillis",
        ));
    }
    let snapshot_every = file.raft.snapshot_every.unwrap_or(20_000);
    if snapshot_every < 100 {
        return Err(invalid("raft.snapshotEvery", "must be at least 100"));
    }

    let id = args
        .id
        .clone()
        .or(file.id)
        .unwrap_or_else(|| "vkube".to_string());
    if !crate::resources::validation::is_dns1123_label(&id).is_empty() || id.len() > 20 {
        return Err(invalid(
            if args.id.is_some() { "--id" } else { "id" },
            &format!(
                "{id:?} must be a DNS label of at most 20 characters (lower-case letters, digits, '-')"
            ),
        ));
    }
    let mut sections = file.clusters;
    if let Some(kc) = &args.kubeconfig {
        sections.push(ClusterSection {
            name: "physical".into(),
            kubeconfig: kc.clone(),
            context: args.context.clone(),
            namespace: args.namespace.clone(),
            ..ClusterSection::default()
        });
    }
    let mut clusters = Vec::new();
    for (i, c) in sections.into_iter().enumerate() {
        let field = format!("clusters[{i}]");
        let cluster = crate::syncer::PhysicalCluster::from_section(c)
            .map_err(|(f, m)| invalid(&format!("{field}.{f}"), &m))?;
        if clusters
            .iter()
            .any(|o: &crate::syncer::PhysicalCluster| o.name == cluster.name)
        {
            return Err(invalid(
                &format!("{field}.name"),
                &format!("{:?} is the name of an earlier cluster", cluster.name),
            ));
        }
        clusters.push(cluster);
    }

    let advertise = match (&args.advertise_address, &file.server.advertise_address) {
        (Some(a), _) => Some((a, "--advertise-address")),
        (None, Some(a)) => Some((a, "server.advertiseAddress")),
        (None, None) => None,
    };
    let advertise = match advertise {
        None => None,
        Some((text, field)) => {
            let addr: SocketAddr = text.parse().map_err(|_| ConfigError::Invalid {
                field: field.into(),
                message: format!(
                    "{text:?} is not an address of the form IP:PORT (for example 192.168.1.20:7443)"
                ),
            })?;
            if addr.ip().is_unspecified() || addr.port() == 0 {
                return Err(invalid(
                    field,
                    &format!("{text:?} must name one reachable address and port"),
                ));
            }
            Some(addr)
        }
    };

    Ok(ValidatedConfig {
        listen,
        data_dir,
        tls_sans,
        advertise,
        kubeconfig_out,
        tokens: file.authentication.tokens,
        watch_window,
        service_cidr,
        node_port_range,
        raft: RaftSettings {
            node_id,
            heartbeat_millis,
            election_timeout_millis,
            snapshot_every,
        },
        sim: None,
        id,
        clusters,
    })
}

fn invalid(field: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str, args: ServerArgs) -> Result<ValidatedConfig, ConfigError> {
        validate(parse_file(Path::new("test.yaml"), yaml)?, &args)
    }

    #[test]
    fn defaults_apply_without_file_or_flags() {
        let c = check("", ServerArgs::default()).expect("defaults are valid");
        assert_eq!(c.listen, "0.0.0.0:7443".parse().expect("addr"));
        assert_eq!(c.data_dir, PathBuf::from("./vkube-data"));
        assert_eq!(c.kubeconfig_out, PathBuf::from("./kubeconfig.yaml"));
        assert_eq!(c.raft.node_id, 1);
    }

    #[test]
    fn sim_feature_gates_are_read_as_kube_apiserver_reads_them() {
        let gates = |g: &str| {
            let args = SimArgs {
                server: ServerArgs::default(),
                name: "sim".into(),
                nodes: 1,
                node_cpu: "8".into(),
                node_memory: "32Gi".into(),
                node_pods: 110,
                feature_gates: Some(g.into()),
            };
            sim_settings(&args)
                .map(|s| s.in_place_resize)
                .map_err(|e| e.to_string())
        };
        assert_eq!(gates(""), Ok(true));
        assert_eq!(gates("InPlacePodVerticalScaling=false"), Ok(false));
        assert_eq!(
            gates("InPlacePodVerticalScaling=F, InPlacePodVerticalScaling=true"),
            Ok(true)
        );
        let err = gates("Nope=true").expect_err("unknown gate");
        assert!(err.contains("unrecognized feature gate: Nope"), "{err}");
        let err = gates("InPlacePodVerticalScaling").expect_err("no value");
        assert!(
            err.contains("missing bool value for InPlacePodVerticalScaling"),
            "{err}"
        );
        let err = gates("InPlacePodVerticalScaling=maybe").expect_err("not a bool");
        assert!(
            err.contains(
                "invalid value of InPlacePodVerticalScaling=maybe, err: strconv.ParseBool: parsing \"maybe\": invalid syntax"
            ),
            "{err}"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let args = ServerArgs {
            listen: Some("127.0.0.1:9000".into()),
            tls_san: vec!["b.example".into()],
            ..Default::default()
        };
        let c = check(
            "server:\n  listen: 127.0.0.1:8000\n  tlsSANs: [a.example]\n",
            args,
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(
            c.tls_sans,
            vec!["a.example".to_string(), "b.example".to_string()]
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            ("server:\n  listen: nowhere\n", "server.listen"),
            ("server:\n  tlsSANs: ['a b']\n", "server.tlsSANs[0]"),
            (
                "authentication:\n  tokens:\n  - {token: short, user: a}\n",
                "authentication.tokens[0].token",
            ),
            ("raft:\n  nodeId: 0\n", "raft.nodeId"),
            (
                "raft:\n  heartbeatMillis: 500\n  electionTimeoutMillis: 600\n",
                "raft.electionTimeoutMillis",
            ),
        ];
        for (yaml, field) in cases {
            let err = check(yaml, ServerArgs::default()).expect_err(yaml);
            assert!(err.to_string().contains(field), "{yaml}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = check("server:\n  lisen: 1.2.3.4:5\n", ServerArgs::default()).expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
