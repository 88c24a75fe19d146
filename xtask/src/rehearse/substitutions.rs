//! The steps that cannot run here, each with what runs in its place and
//! why. A step is found by workflow file, job and step name; a `run:` step
//! that is not here runs as written, and one that cannot (network, the
//! recursion of `bash .ci/run`) fails the rehearsal until it is added:
//! nothing is skipped without a line in this table.

/// What replaces a step.
pub struct Substitution {
    pub workflow: &'static str,
    pub job: &'static str,
    /// The step's `name`, exactly.
    pub step: &'static str,
    /// Why it cannot run here, printed beside it.
    pub why: &'static str,
    /// A bash script run in its place, in the step's environment (the job's
    /// env, the `GITHUB_*` files, the working directory); `None`: nothing
    /// runs.
    pub instead: Option<&'static str>,
}

pub const TABLE: &[Substitution] = &[
    Substitution {
        workflow: "conformance.yml",
        job: "linux-host",
        step: "What checkout and rustup need",
        why: "apt-get update/install needs Debian's mirrors; the container's packages are checked instead",
        instead: Some(
            "command -v git >/dev/null && command -v curl >/dev/null && command -v python3 >/dev/null",
        ),
    },
    Substitution {
        workflow: "conformance.yml",
        job: "linux-host",
        step: "Rust, as rust-toolchain.toml pins it",
        why: "rustup's installer is downloaded (curl sh.rustup.rs); the pinned toolchain must exist here instead",
        instead: Some(
            r#"pin="$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' rust-toolchain.toml)"
rustc --version | grep -q "^rustc $pin " || { echo "rustc here is not the pin $pin" >&2; exit 1; }
echo "$CARGO_HOME/bin" >> "$GITHUB_PATH""#,
        ),
    },
    Substitution {
        workflow: "conformance.yml",
        job: "linux-host",
        step: "bash .ci/run (cargo xtask ci)",
        why: "it is the CI that runs this rehearsal (it would recurse); what it trips on first runs instead: Go builds in the checkout, which another uid owns, as root",
        instead: Some(
            r#"(cd fixtures/go/method-panic && CGO_ENABLED=1 go build -buildmode=c-shared -o "$RUNNER_TEMP/method-panic.so" .)
(cd plugins/go-native-echo && CGO_ENABLED=1 go build -buildmode=plugin -o "$RUNNER_TEMP/go-native-echo.so" .)"#,
        ),
    },
    Substitution {
        workflow: "release-gate.yml",
        job: "gate",
        step: "Build plugcheck",
        why: "a release build of plugcheck takes minutes; the conformance run built the same sources, which are copied where the step puts its build",
        instead: Some(
            r#"mkdir -p target/release && cp "$REHEARSAL_PLUGCHECK" target/release/plugcheck"#,
        ),
    },
    Substitution {
        workflow: "gate-shards.yml",
        job: "build",
        step: "Build plugcheck",
        why: "a release build of plugcheck takes minutes; the conformance run built the same sources, which are copied where the step puts its build",
        instead: Some(
            r#"mkdir -p target/release && cp "$REHEARSAL_PLUGCHECK" target/release/plugcheck"#,
        ),
    },
];

/// The substitution for a step, if the table has one.
pub fn find(workflow: &str, job: &str, step: &str) -> Option<&'static Substitution> {
    TABLE
        .iter()
        .find(|s| s.workflow == workflow && s.job == job && s.step == step)
}

/// Why a step cannot run here as written, if it looks like one that
/// cannot: the rehearsal refuses to run it without a substitution.
pub fn cannot_run_here(script: &str) -> Option<&'static str> {
    [
        ("apt-get", "installs from Debian's mirrors"),
        ("sh.rustup.rs", "downloads rustup's installer"),
        ("curl ", "downloads"),
        (".ci/run", "is the CI running this rehearsal"),
        ("rustup toolchain install", "downloads a toolchain"),
    ]
    .into_iter()
    .find(|(mark, _)| script.contains(mark))
    .map(|(_, why)| why)
}
