//! Which host builds each item of a leg, and with which tools: a pure
//! function of the manifest, the leg and the host, so the plan a Windows
//! runner computes can be computed, and checked, on Linux too (`cargo
//! xtask rehearse`). A Windows host builds what its tools build; the rest
//! (an ELF file, Go-native plugins, a static library made with `cc`) is
//! built by the Linux leg in WSL2 and taken from there.

use plugcheck_fixtures::{CTarget, Fixture, InputKind, Manifest, Source};

use crate::platform::Platform;

/// A tool a fixture's build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    /// Cargo and rustc with the leg's target.
    Rust,
    /// A C compiler that makes Linux ELF files (`cc`).
    Cc,
    /// `ar`, next to `cc`.
    Ar,
    /// aarch64 gcc (Linux wrong-architecture).
    Aarch64,
    /// MinGW-w64's x86_64 gcc.
    Mingw,
    /// MinGW-w64's i686 gcc.
    MingwI686,
    /// Go on PATH.
    Go,
    /// A second Go release (`/usr/lib/go-1.*`).
    OtherGo,
    /// `mkfifo`, `ln -s /dev/zero`: Unix file kinds.
    UnixFiles,
}

/// One fixture of a leg: what builds it and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub tools: Vec<Tool>,
    /// The host whose tools build it: the leg's host, or Linux (the WSL2
    /// leg) for what a Windows host cannot build.
    pub built_on: Platform,
}

/// What each host has for building a leg's fixtures.
pub fn host_tools(host: Platform) -> &'static [Tool] {
    match host {
        Platform::Linux => &[
            Tool::Rust,
            Tool::Cc,
            Tool::Ar,
            Tool::Aarch64,
            Tool::Mingw,
            Tool::MingwI686,
            Tool::Go,
            Tool::OtherGo,
            Tool::UnixFiles,
        ],
        // The windows-2025 runner as conformance.yml sets it up: rustup
        // with the gnu target, C:\mingw64 and C:\mingw32, the image's Go.
        Platform::Windows => &[Tool::Rust, Tool::Mingw, Tool::MingwI686, Tool::Go],
    }
}

/// The plan of `leg` on `host`: every fixture the leg judges, in manifest
/// order.
pub fn plan(manifest: &Manifest, leg: Platform, host: Platform) -> Vec<Planned> {
    manifest
        .fixtures
        .iter()
        .filter(|fixture| fixture.runs_on(leg.name()))
        .map(|fixture| {
            let tools = tools_for(leg, fixture);
            let here = tools.iter().all(|tool| host_tools(host).contains(tool));
            Planned {
                name: fixture.name.clone(),
                tools,
                built_on: if here { host } else { Platform::Linux },
            }
        })
        .collect()
}

/// The tools that build `fixture` for `leg` (mirrors `fixtures::build_one`).
pub fn tools_for(leg: Platform, fixture: &Fixture) -> Vec<Tool> {
    let native_c = match leg {
        Platform::Linux => Tool::Cc,
        Platform::Windows => Tool::Mingw,
    };
    match &fixture.source {
        Source::Crate { .. } => vec![Tool::Rust],
        Source::C { target, .. } => vec![match (leg, target) {
            (_, CTarget::Native) => native_c,
            (Platform::Linux, CTarget::Foreign) => Tool::Mingw,
            (Platform::Windows, CTarget::Foreign) => Tool::Cc,
            (Platform::Linux, CTarget::WrongArch) => Tool::Aarch64,
            (Platform::Windows, CTarget::WrongArch) => Tool::MingwI686,
        }],
        Source::Go { .. } => vec![Tool::Go, native_c],
        // Go builds plugins for Linux only: every leg judges that build.
        Source::GoPlugin { other_go, .. } => {
            let mut tools = vec![Tool::Go, Tool::Cc];
            if *other_go {
                tools.push(Tool::OtherGo);
            }
            tools
        }
        Source::Input { input } => match input {
            InputKind::Empty | InputKind::Text | InputKind::Directory => Vec::new(),
            InputKind::Truncated | InputKind::Padded | InputKind::Rlib => vec![Tool::Rust],
            InputKind::Fifo | InputKind::Device => vec![Tool::UnixFiles],
            InputKind::StaticLibrary => vec![Tool::Cc, Tool::Ar],
            InputKind::Executable => vec![native_c],
        },
        Source::System { .. } => vec![Tool::Cc],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::load(&crate::paths::project_root()).unwrap()
    }

    #[test]
    fn a_linux_host_builds_every_item_of_both_legs_itself() {
        for leg in [Platform::Linux, Platform::Windows] {
            let plan = plan(&manifest(), leg, Platform::Linux);
            assert!(plan.iter().all(|item| item.built_on == Platform::Linux));
        }
    }

    #[test]
    fn a_windows_host_takes_elf_go_native_and_cc_items_from_the_linux_leg() {
        let plan = plan(&manifest(), Platform::Windows, Platform::Windows);
        let from_linux: Vec<&str> = plan
            .iter()
            .filter(|item| item.built_on == Platform::Linux)
            .map(|item| item.name.as_str())
            .collect();
        assert!(from_linux.contains(&"foreign-format"), "{from_linux:?}");
        assert!(from_linux.contains(&"go-native-other-go"), "{from_linux:?}");
        assert!(
            plan.iter()
                .filter(|item| item.built_on == Platform::Windows)
                .all(|item| item
                    .tools
                    .iter()
                    .all(|t| host_tools(Platform::Windows).contains(t)))
        );
        let wrong_arch = plan.iter().find(|item| item.name == "wrong-architecture");
        assert_eq!(
            wrong_arch.map(|item| item.built_on),
            Some(Platform::Windows),
            "C:\\mingw32 builds it"
        );
    }
}
