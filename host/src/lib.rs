#![doc = include_str!("../README.md")]
#![warn(unreachable_pub)]

pub mod admission;
pub mod in_process;
