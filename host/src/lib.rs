#![doc = include_str!("../README.md")]
#![warn(unreachable_pub)]

pub use plugcheck::embed::serve_if_worker;

pub mod admission;
pub mod call;
pub mod config;
pub mod host;
pub mod in_process;
pub mod observe;
pub mod supervision;
pub mod worker;
