//! `cargo xtask rehearse`: the workflows run here the way GitHub's runners
//! run them, so a mistake in them fails in CI here, not on a runner. What
//! can run here runs (every `run:` block of the Linux jobs, with the
//! runner's shell, expressions and `GITHUB_*` files); what cannot is a
//! declared substitution (`substitutions.rs`); an unknown step that cannot
//! run fails the rehearsal. The Windows job's plan is computed as a
//! Windows host computes it and checked against what that runner has.
//!
//! `--contract-of REV` checks another revision's workflows against today's
//! contract (issue 26's record: each rule failing on the old files).

mod artifacts;
mod expr;
mod files;
mod job;
mod scenarios;
mod substitutions;
mod windows_plan;

use std::path::Path;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Check the workflows of this git revision against the contract instead of rehearsing.
    #[arg(long, value_name = "REV")]
    pub contract_of: Option<String>,
    /// Rehearse the workflows of this git revision (with today's rehearsal), e.g. to see an old mistake fail.
    #[arg(long, value_name = "REV")]
    pub workflows_of: Option<String>,
}

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    if let Some(rev) = &args.contract_of {
        return contract_of(sh, rev);
    }
    let started = std::time::Instant::now();
    let workflows = scenarios::Workflows {
        rev: args.workflows_of.clone(),
    };
    let plan_problems = windows_plan::check(&workflows.read("conformance.yml")?)?;
    scenarios::run_all(sh, &workflows, plan_problems)?;
    eprintln!(
        "rehearse: every step ran or was substituted as declared ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The contract check over `rev`'s files, unpacked into a scratch
/// repository (`git check-attr` needs one).
fn contract_of(sh: &Shell, rev: &str) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let dir = scratch.path();
    let archive = cmd!(sh, "git archive {rev}")
        .quiet()
        .output()
        .with_context(|| format!("cannot `git archive {rev}`"))?;
    unpack(&archive.stdout, dir)?;
    cmd!(sh, "git init -q {dir}").quiet().run()?;
    crate::workflows::check_contract(dir)
        .with_context(|| format!("the workflows of `{rev}` break the contract"))
}

fn unpack(tar: &[u8], dir: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("tar")
        .args(["-x", "-C"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("cannot run tar")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(tar)
        .context("cannot feed tar")?;
    if !child.wait()?.success() {
        bail!("tar could not unpack the archive");
    }
    Ok(())
}
