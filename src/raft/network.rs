//! The peer network. A single-member group sends no RPCs; every RPC to a peer reports the
//! peer unreachable until peer transport (HTTP/2 + mTLS, postcard bodies) is built, so a
//! misconfigured multi-member group fails loudly instead of silently.

use std::future::Future;
use std::io::Cursor;

use openraft::alias::{SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{NodeInfo, OptionalSend, RaftNetworkV2};

use super::TypeConfig;

/// Factory of peer clients.
pub struct PeerNetwork;

/// A client for one peer.
pub struct PeerClient {
    target: u64,
}

fn unreachable(target: u64) -> Unreachable<TypeConfig> {
    Unreachable::new(&std::io::Error::other(format!(
        "raft peer {target}: peer transport is not available in this build (single-member groups only)"
    )))
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, _node: &NodeInfo) -> Self::Network {
        PeerClient { target }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(unreachable(self.target)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(unreachable(self.target)))
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<TypeConfig>,
        _snapshot: SnapshotOf<TypeConfig, Self::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Network(NetworkError::new(
            &std::io::Error::other(format!(
                "raft peer {}: peer transport is not available in this build",
                self.target
            )),
        )))
    }
}
