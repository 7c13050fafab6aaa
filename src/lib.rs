//! onair: a self-hosted broadcast composition service.
//! See `docs/ARCHITECTURE.md` for the map of these modules.

pub mod api;
pub mod auth;
pub mod bench;
pub mod composer;
pub mod config;
pub mod demo;
pub mod layout;
pub mod livestream;
pub mod metrics;
pub mod mux;
pub mod outputs;
pub mod render;
pub mod server;
pub mod sfu;
pub mod storage;
pub mod store;
