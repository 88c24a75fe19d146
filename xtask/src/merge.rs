//! `cargo xtask merge-reports`: the legs' JSON reports as one platform ×
//! case table (`compare.rs`), showing where the platforms disagree.

use std::path::PathBuf;

use crate::compare::Comparison;
use plugcheck::report::Report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// JSON reports of `plugcheck check --json`, one per leg.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Show every case, not only where the platforms disagree.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let reports = args
        .reports
        .iter()
        .map(|path| Report::read_json(path))
        .collect::<Result<Vec<_>, _>>()?;
    print!("{}", Comparison::of(&reports).table(args.all));
    Ok(())
}
