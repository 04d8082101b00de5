//! Everything openraft: the type config, the log store (segment files), the state machine
//! adapter over [`crate::store::Store`], the peer network, and [`RaftNode`], the one handle the
//! rest of the daemon uses.
//!
//! Invariants:
//! - No openraft type appears in this module's public API: callers see [`Command`],
//!   [`CommandResult`] and [`RaftNodeError`].
//! - A node id is written beside the data on first start and must match on every later start
//!   (openraft: node ids are never reused after their data is wiped).
//! - The group is initialized once, on a pristine node; a restarted node never re-initializes.

mod log_file;
mod log_store;
mod network;
mod state_machine;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, NodeInfo, ReadPolicy, SnapshotPolicy};

use crate::config::RaftSettings;
use crate::store::{Command, CommandResult, Store};

openraft::declare_raft_types!(
    /// vkube's Raft types: commands in, results out, nodes with their addresses.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        Node = NodeInfo,
);

type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;

/// How long a write or a read barrier may wait for the Raft group.
const RAFT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the leader waits for more writes before appending a batch (group commit): each
/// append is a log transaction with an fsync, so under load a millisecond gathers writes that
/// would each have paid for one (a 1,000-pod rollout spends about an eighth less CPU), and an
/// idle write waits at most this much longer.
const BATCH_LINGER_MILLIS: u64 = 1;

/// Errors of the Raft layer.
#[derive(Debug, thiserror::Error)]
pub enum RaftNodeError {
    /// The data dir belongs to another node id.
    #[error(
        "data dir {dir} belongs to raft node {found}, but this node is configured as {configured}; node ids must never be reused or changed"
    )]
    NodeIdMismatch {
        /// The data dir.
        dir: String,
        /// The id written there.
        found: u64,
        /// The configured id.
        configured: u64,
    },
    /// Storage could not be opened or written.
    #[error("raft storage: {0}")]
    Storage(String),
    /// This node is not the leader and cannot serve the request itself.
    #[error("this node is not the raft leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's id, if known.
        leader: Option<u64>,
    },
    /// The Raft group did not answer in time.
    #[error("the raft group did not answer within {0:?}")]
    Timeout(Duration),
    /// The Raft core stopped; the node must restart.
    #[error("raft stopped: {0}")]
    Fatal(String),
    /// openraft refused the configuration.
    #[error("raft config: {0}")]
    Config(String),
}

/// A running Raft node with its store.
pub struct RaftNode {
    raft: Raft,
    id: u64,
}

impl RaftNode {
    /// Opens the log in `data_dir`, starts Raft over `store`, and initializes a single-member
    /// group if this node is pristine. Returns once this node is leader (single member).
    pub async fn start(
        data_dir: &Path,
        settings: &RaftSettings,
        store: Arc<Store>,
        api_addr: &str,
    ) -> Result<RaftNode, RaftNodeError> {
        let storage = |e: &dyn std::fmt::Display| RaftNodeError::Storage(e.to_string());
        check_node_id(data_dir, settings.node_id)?;
        let log = log_store::LogStore::open(&data_dir.join("raft-log")).map_err(|e| storage(&e))?;
        let sm = state_machine::StateMachine::new(store, data_dir.join("snapshot.bin"));
        let config = Config {
            cluster_name: "vkube".into(),
            heartbeat_interval: settings.heartbeat_millis,
            election_timeout_min: settings.election_timeout_millis,
            election_timeout_max: settings.election_timeout_millis * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
            max_in_snapshot_log_to_keep: 1000,
            api_batch_linger_ms: BATCH_LINGER_MILLIS,
            ..Default::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| RaftNodeError::Config(e.to_string()))?,
        );
        let raft = Raft::new(settings.node_id, config, network::PeerNetwork, log, sm)
            .await
            .map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
        let node = RaftNode {
            raft,
            id: settings.node_id,
        };
        let initialized = node
            .raft
            .is_initialized()
            .await
            .map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
        if !initialized {
            let mut members = BTreeMap::new();
            members.insert(
                settings.node_id,
                NodeInfo {
                    raft_addr: String::new(),
                    data: api_addr.to_string(),
                },
            );
            if let Err(e) = node.raft.initialize(members).await {
                tracing::warn!(error = %e, "raft initialize refused (already initialized)");
            }
        }
        node.raft
            .wait(Some(RAFT_TIMEOUT))
            .current_leader(settings.node_id, "single-member group elects itself")
            .await
            .map_err(|e| RaftNodeError::Fatal(e.to_string()))?;
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Proposes `command`; returns what applying it returned once it is committed and applied.
    pub async fn write(&self, command: Command) -> Result<CommandResult, RaftNodeError> {
        let fut = self.raft.client_write(command);
        let resp = tokio::time::timeout(RAFT_TIMEOUT, fut)
            .await
            .map_err(|_| RaftNodeError::Timeout(RAFT_TIMEOUT))?;
        match resp {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(RaftNodeError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(e)) => {
                tracing::warn!(error = %e, "write not accepted");
                Err(RaftNodeError::NotLeader { leader: None })
            }
            Err(RaftError::Fatal(f)) => Err(RaftNodeError::Fatal(f.to_string())),
        }
    }

    /// Waits until this node's state machine reflects every write committed before the call
    /// (read index), so a read after it is linearizable.
    pub async fn read_barrier(&self) -> Result<(), RaftNodeError> {
        let fut = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match tokio::time::timeout(RAFT_TIMEOUT, fut).await {
            Err(_) => Err(RaftNodeError::Timeout(RAFT_TIMEOUT)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::Fatal(f))) => Err(RaftNodeError::Fatal(f.to_string())),
            Ok(Err(RaftError::APIError(e))) => {
                tracing::debug!(error = %e, "linearizable read refused");
                Err(RaftNodeError::NotLeader {
                    leader: self.raft.current_leader().await,
                })
            }
        }
    }

    /// Whether this node is the leader now.
    pub async fn is_leader(&self) -> bool {
        self.raft.current_leader().await == Some(self.id)
    }

    /// Stops the Raft core.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Writes the node id on first start; refuses a mismatch later.
fn check_node_id(data_dir: &Path, id: u64) -> Result<(), RaftNodeError> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found: u64 = text.trim().parse().map_err(|_| {
                RaftNodeError::Storage(format!("{} is not a node id", path.display()))
            })?;
            if found != id {
                return Err(RaftNodeError::NodeIdMismatch {
                    dir: data_dir.display().to_string(),
                    found,
                    configured: id,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            let mut f =
                std::fs::File::create(&path).map_err(|e| RaftNodeError::Storage(e.to_string()))?;
            f.write_all(format!("{id}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| RaftNodeError::Storage(e.to_string()))
        }
        Err(e) => Err(RaftNodeError::Storage(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::log_store::LogStore;
    use super::state_machine::StateMachine;
    use super::*;
    use openraft::StorageError;
    use openraft::testing::log::{StoreBuilder, Suite};

    /// A log store and state machine on real files in a temporary directory (the guard).
    struct OnDisk;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
            use openraft::type_config::TypeConfigExt;
            let io = |e: &dyn std::fmt::Display| StorageError::read(TypeConfig::err_from_string(e));
            let dir = tempfile::tempdir().map_err(|e| io(&e))?;
            let log = LogStore::open(&dir.path().join("raft-log")).map_err(|e| io(&e))?;
            let store = Store::open(dir.path(), 1000).map_err(|e| io(&e))?;
            let sm = StateMachine::new(Arc::new(store), dir.path().join("snapshot.bin"));
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite (reads, appends, truncation, purges, votes,
    /// membership, applying, and moving a snapshot between state machines) passes against
    /// the segment-file log and the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn storage_passes_openraft_conformance_suite() {
        Suite::test_all(OnDisk)
            .await
            .expect("openraft storage suite");
    }
}
