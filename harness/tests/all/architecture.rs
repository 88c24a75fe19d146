//! The harness's modules form layers: no module reaches, directly or
//! through others, a module that reaches it back. Read from the sources:
//! every `crate::NAME` a top-level module's files mention is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its files name.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    collect(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| module_of(&src, file))
        .collect();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let edges = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != module && modules.contains(&name) {
                edges.insert(name);
            }
        }
        // `use crate::{a, b::c}` names several at once.
        for (at, _) in text.match_indices("use crate::{") {
            let rest = &text[at + "use crate::{".len()..];
            let group = &rest[..rest.find("};").unwrap_or(0)];
            for part in group.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name != module && modules.contains(&name) {
                    edges.insert(name);
                }
            }
        }
    }
    graph
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// `src/report/model.rs` → `report`; `src/lib.rs` and `main.rs` → none.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_reaches_back_to_itself() {
    let graph = graph();
    let cycles: BTreeSet<String> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import loops between harness modules:\n  {}",
        cycles.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

/// The same inside `cli/`, one level down: its files name each other as
/// `super::NAME` (`check` hands `foreign` a forwarded check; `foreign`
/// never reaches back into `check`).
#[test]
fn no_command_reaches_back_to_itself() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut files = Vec::new();
    collect(&cli, &mut files);
    let name = |file: &Path| module_of(&cli, file).filter(|name| name != "mod");
    let commands: BTreeSet<String> = files.iter().filter_map(|file| name(file)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(command) = name(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let edges = graph.entry(command.clone()).or_default();
        for (at, _) in text.match_indices("super::") {
            let named: String = text[at + "super::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if named != command && commands.contains(&named) {
                edges.insert(named);
            }
        }
    }
    assert!(
        graph
            .get("check")
            .is_some_and(|edges| edges.contains("foreign")),
        "the reader sees `check` use `foreign`: {graph:?}"
    );
    let cycles: BTreeSet<String> = graph
        .keys()
        .filter_map(|command| cycle_from(&graph, command))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import loops between the files of cli/:\n  {}",
        cycles.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn the_loop_finder_finds_a_loop() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["c".to_owned()].into()),
        ("c".to_owned(), ["a".to_owned()].into()),
        ("d".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert_eq!(
        cycle_from(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle_from(&graph, "d"), None);
}
