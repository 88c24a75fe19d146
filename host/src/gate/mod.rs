//! The release gate: `policy` is its rules (which verdicts break it, which
//! waivers accept them and until when), `file` reads them from
//! `plugcheck.toml` (strictly, found beside the plugin or above it), and
//! `judge` judges a report by them and tallies its verdicts.

pub mod file;
pub mod judge;
pub mod policy;
