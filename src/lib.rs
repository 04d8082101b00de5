//! vkube: a virtual Kubernetes control plane.
//!
//! See `ARCHITECTURE.md` for the map of modules and their invariants.

pub mod api;
pub mod codec;
pub mod config;
pub mod controllers;
pub mod demo;
pub mod raft;
pub mod resources;
pub mod scheduler;
pub mod server;
pub mod sim;
pub mod store;
pub mod syncer;
pub mod tls;
