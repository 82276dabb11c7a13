//! What every integration test shares: an in-process server and its client
//! ([`server`]), the real binary as a child process ([`process`]), request
//! builders ([`requests`]) and test vectors with their exact reference
//! ([`data`]).

#![allow(dead_code)]

pub mod data;
pub mod process;
pub mod raw;
pub mod requests;
pub mod secure;
pub mod server;

pub use data::*;
pub use requests::*;
pub use server::*;
