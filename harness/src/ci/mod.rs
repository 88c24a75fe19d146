//! Reports CI systems read: JUnit XML (`--junit`), and in GitHub Actions
//! workflow-command annotations on stdout and a markdown job summary.

pub mod github;
pub mod junit;
