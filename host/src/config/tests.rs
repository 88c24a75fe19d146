use super::*;

/// The example in this module's documentation, as written there.
fn documented_example() -> String {
    let source = include_str!("../config.rs");
    let start = source
        .find("//! ```toml\n")
        .expect("the module shows a TOML example")
        + 12;
    let end = start + source[start..].find("//! ```").unwrap();
    source[start..end]
        .lines()
        .map(|line| {
            line.strip_prefix("//! ")
                .or(line.strip_prefix("//!"))
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn read(text: &str) -> (tempfile::TempDir, Result<HostConfig, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, text).unwrap();
    let config = HostConfig::read(&path);
    (dir, config)
}

#[test]
fn the_documented_example_reads_with_paths_beside_the_file() {
    let (dir, config) = read(&documented_example());
    let config = config.unwrap();
    assert_eq!(config.reports, [dir.path().join("reports/linux.json")]);
    assert_eq!(config.max_loaded, Some(2));
    assert_eq!(
        config.worker_program,
        Some(dir.path().join("bin/plugcheck"))
    );
    let [echo, parser] = &config.plugins[..] else {
        panic!("{config:?}")
    };
    assert_eq!(echo.mode, Mode::InProcess);
    assert_eq!(echo.build, dir.path().join("plugins/libecho.so"));
    assert_eq!(echo.deadline, Duration::from_secs(2));
    assert_eq!(echo.idle_unload, Some(Duration::from_secs(300)));
    assert!(echo.watch && echo.require_passing_report);
    assert_eq!(parser.mode, Mode::Worker);
    assert_eq!(parser.max_in_flight, 8);
    assert_eq!(parser.checkpoint, Some(Duration::from_secs(5)));
    assert_eq!(parser.restart.first, Duration::from_millis(100));
    assert_eq!(parser.restart.attempts, 8);
    // What the file leaves out keeps its default.
    assert_eq!(parser.restart.stable_after, Restart::default().stable_after);
    assert!(parser.breaker.per_method);
    assert_eq!(parser.deadline, Duration::from_secs(10));
}

#[test]
fn a_misspelt_key_is_named_with_its_line() {
    let (_dir, config) = read("[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\ndeadlin = \"1s\"\n");
    let said = config.unwrap_err().to_string();
    assert!(
        said.contains("deadlin") && said.contains("line 4"),
        "{said}"
    );
}

#[test]
fn a_bad_duration_is_refused() {
    let (_dir, config) = read("[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\ndeadline = \"soon\"\n");
    assert!(
        matches!(config, Err(ConfigError::Invalid { .. })),
        "{config:?}"
    );
}

#[test]
fn what_no_parser_catches_is_refused_by_name() {
    let cases = [
        ("max_loaded = 0\n", "`max_loaded` is 0"),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\n[[plugin]]\nname = \"a\"\nbuild = \"b.so\"\n",
            "plugin `a`: the name is used twice",
        ),
        (
            "[[plugin]]\nname = \" \"\nbuild = \"a.so\"\n",
            "empty `name`",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\nidle_unload = \"0s\"\n",
            "`idle_unload` is 0",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\ndeadline = \"400days\"\n",
            "`deadline` is over 30 days",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\nrestart = { first = \"2s\", max = \"1s\" }\n",
            "`restart.max` (1s) is below `restart.first` (2s)",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\nrestart = { stable_after = \"0s\" }\n",
            "`restart.stable_after` is 0",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\nbreaker = { failures = 0 }\n",
            "`breaker.failures` is 0",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\nbreaker = { open_for = \"0s\" }\n",
            "`breaker.open_for` is 0",
        ),
        (
            "[[plugin]]\nname = \"a\"\nbuild = \"a.so\"\nmax_in_flight = 0\n",
            "`max_in_flight` is 0",
        ),
        (
            "[[plugin]]\nname = \"a\\u001b\"\nbuild = \"a.so\"\npin = \"abc\"\n",
            "plugin `a\\u{1b}`: `pin` `abc` is not a SHA-256",
        ),
    ];
    for (text, expected) in cases {
        let (_dir, config) = read(text);
        let said = config.unwrap_err().to_string();
        assert!(said.contains(expected), "{text:?}: {said}");
    }
}

#[test]
fn a_directory_or_a_huge_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let said = HostConfig::read(dir.path()).unwrap_err().to_string();
    assert!(said.contains("not a regular file"), "{said}");
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "#".repeat((MAX_CONFIG_BYTES + 1) as usize)).unwrap();
    assert!(matches!(
        HostConfig::read(&huge),
        Err(ConfigError::TooLarge { .. })
    ));
}
