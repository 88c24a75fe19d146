//! No source file reaches, through the files it imports, back to itself —
//! in any crate of the repository (the harness, the xtask, the plugins, the
//! fixtures and their tests).
//!
//! Read the way a reviewer reads: a node is a file, not a folder. Each
//! crate's module tree is followed from its root by its `mod` declarations
//! (`#[path]` included, every `cfg` branch), and every path in a file —
//! `crate::`, `super::`, `self::`, a child module's name, `use` groups
//! nested to any depth, test modules included — is resolved to the file
//! that defines the longest module prefix it names, through `pub use`
//! re-exports to where the item lives and through the names a `use`
//! brought in. A file that names another file is an edge — a folder's
//! `mod.rs` naming its children too; a `pub use` itself is not (it names
//! an item for others, who are sent on). Comments and strings are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's sources: each file (relative to the repository) with its
/// text, and the module path the crate gives it.
struct Crate {
    files: Vec<SourceFile>,
}

struct SourceFile {
    path: String,
    module: Vec<String>,
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// The file-level import graph of a set of crates: file → files it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Comments, strings and character literals removed; identifiers, `::` and
/// single punctuation kept.
fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string_at(&chars, i) {
            i += 1;
            let mut hashes = 0;
            while chars.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 3; // the quote, the backslash and the escaped character
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token::Ident(word.trim_start_matches('$').to_owned()));
        } else if c == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// `r"…"` or `r#"…"#` starts here (and not an identifier ending in `r`).
fn raw_string_at(chars: &[char], at: usize) -> bool {
    if at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_') {
        return false;
    }
    let mut i = at + 1;
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

/// The `mod NAME;` declarations of a file, each with its `#[path]` if any.
fn declared_modules(tokens: &[Token]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (at, token) in tokens.iter().enumerate() {
        if token != &Token::Ident("mod".into()) {
            continue;
        }
        let (Some(Token::Ident(name)), Some(Token::Punct(';'))) =
            (tokens.get(at + 1), tokens.get(at + 2))
        else {
            continue;
        };
        out.push((name.clone(), None));
    }
    out
}

/// The `#[path = "…"]` values of a file's text, in order, each with the
/// module it is attached to (the next `mod NAME;`).
fn path_attributes(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pending = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#[path = \"") {
            pending = rest.split('"').next().map(str::to_owned);
        } else if let Some(rest) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .or_else(|| line.strip_prefix("pub(crate) mod "))
            .or_else(|| line.strip_prefix("pub(super) mod "))
        {
            if let Some(path) = pending.take() {
                let name = rest.trim_end_matches(';').trim().to_owned();
                out.entry(name).or_default().push(path);
            }
        } else if !line.starts_with("#[") && !line.is_empty() {
            pending = None;
        }
    }
    out
}

/// A crate read from its root file by its `mod` declarations.
fn read_crate(repo: &Path, root: &Path) -> Crate {
    let mut files = Vec::new();
    let mut queue = vec![(root.to_path_buf(), Vec::<String>::new(), true)];
    let mut seen = BTreeSet::new();
    while let Some((file, module, owns_dir)) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let tokens = tokens(&text);
        let here = file.parent().unwrap().to_path_buf();
        // Where `mod x;` looks: beside a root or `mod.rs`, else in a
        // folder named after the file.
        let children_dir = if owns_dir {
            here.clone()
        } else {
            here.join(file.file_stem().unwrap())
        };
        let mut paths = path_attributes(&text);
        for (name, _) in declared_modules(&tokens) {
            let mut child = module.clone();
            child.push(name.clone());
            let candidates: Vec<(PathBuf, bool)> = match paths.get_mut(&name) {
                Some(given) if !given.is_empty() => {
                    let path = here.join(given.remove(0));
                    let is_mod = path.file_name().is_some_and(|n| n == "mod.rs");
                    vec![(path, is_mod)]
                }
                _ => vec![
                    (children_dir.join(format!("{name}.rs")), false),
                    (children_dir.join(&name).join("mod.rs"), true),
                ],
            };
            if let Some((path, is_mod)) = candidates.into_iter().find(|(p, _)| p.is_file()) {
                queue.push((path, child, is_mod));
            }
        }
        let path = file
            .strip_prefix(repo)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        files.push(SourceFile {
            path,
            module,
            tokens,
        });
    }
    Crate { files }
}

/// How a file names a path.
#[derive(Clone, Copy, PartialEq)]
enum Naming {
    /// In code, or in a private `use`: the file depends on it.
    Uses,
    /// In a `pub use`: a re-export, which names the item for others; those
    /// who name it through the re-export are sent on to where it lives.
    Reexports,
}

/// One path a file names, made absolute, and the name a `use` gives it.
struct Named {
    path: Vec<String>,
    naming: Naming,
    alias: Option<String>,
}

/// Every path a file names, resolved to absolute module paths of its
/// crate (`crate::a::b::C`, `super::x`, `self::x`, a child's name, a name
/// a `use` brought in; `use` groups expanded).
fn named_paths(file: &SourceFile, modules: &BTreeSet<Vec<String>>) -> Vec<Named> {
    let mut aliases = BTreeMap::new();
    // Twice: the first pass learns the names `use` brings in (a `use` may
    // come after the code that relies on it), the second resolves with them.
    let mut out = Vec::new();
    for _ in 0..2 {
        out = scan(file, modules, &aliases);
        for named in &out {
            if let Some(alias) = &named.alias {
                aliases.insert(alias.clone(), named.path.clone());
            }
        }
    }
    out
}

fn scan(
    file: &SourceFile,
    modules: &BTreeSet<Vec<String>>,
    aliases: &BTreeMap<String, Vec<String>>,
) -> Vec<Named> {
    let tokens = &file.tokens;
    let mut out = Vec::new();
    // The inline modules (`mod tests { … }`) the scan is in, by brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Punct('{'))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                }
            }
            _ => {}
        }
        let in_use = i > 0 && tokens[i - 1] == Token::Ident("use".into());
        let starts_path = matches!(&tokens[i], Token::Ident(_))
            && (in_use || tokens.get(i + 1) == Some(&Token::PathSep))
            && !matches!(i.checked_sub(1).map(|p| &tokens[p]), Some(Token::PathSep));
        if starts_path {
            let naming = if in_use && is_pub(tokens, i - 1) {
                Naming::Reexports
            } else {
                Naming::Uses
            };
            let mut current = file.module.clone();
            current.extend(inline.iter().map(|(name, _)| name.clone()));
            let (relative, next) = use_tree(tokens, i);
            for (mut path, alias) in relative {
                if let Some(target) = path.first().and_then(|first| aliases.get(first))
                    && !in_use
                {
                    let mut expanded = target.clone();
                    expanded.extend(path.drain(1..));
                    path = std::iter::once("crate".to_owned())
                        .chain(expanded)
                        .collect();
                }
                if let Some(absolute) = resolve(&current, &path, modules) {
                    let alias = alias.or_else(|| in_use.then(|| path.last().cloned()).flatten());
                    out.push(Named {
                        path: absolute,
                        naming,
                        alias: alias.filter(|_| in_use),
                    });
                }
            }
            i = next;
            continue;
        }
        i += 1;
    }
    out
}

/// Whether the `use` at `at` is `pub`, `pub(crate)`, `pub(super)`….
fn is_pub(tokens: &[Token], at: usize) -> bool {
    match at.checked_sub(1).map(|p| &tokens[p]) {
        Some(Token::Ident(word)) => word == "pub",
        Some(Token::Punct(')')) => (1..=4).any(|back| {
            at.checked_sub(back + 1)
                .is_some_and(|p| tokens[p] == Token::Ident("pub".into()))
        }),
        _ => false,
    }
}

/// A path a `use` tree spells, with the name `as` gives it.
type Leaf = (Vec<String>, Option<String>);

/// The paths a path or `use` tree starting at `at` spells, each with the
/// name `as` gives it, and where it ends: `a::{b, c::{d as e, self}}` →
/// `a::b`, `a::c::d` (as `e`), `a::c`.
fn use_tree(tokens: &[Token], at: usize) -> (Vec<Leaf>, usize) {
    let mut prefix = Vec::new();
    let mut i = at;
    loop {
        match tokens.get(i) {
            Some(Token::Ident(word)) if word == "self" && !prefix.is_empty() => i += 1,
            Some(Token::Ident(word)) => {
                prefix.push(word.clone());
                i += 1;
            }
            Some(Token::Punct('{')) => {
                let mut out = Vec::new();
                i += 1;
                loop {
                    match tokens.get(i) {
                        Some(Token::Punct('}')) | None => {
                            i += 1;
                            break;
                        }
                        Some(Token::Punct(',')) => i += 1,
                        Some(Token::Ident(_)) => {
                            let (inner, next) = use_tree(tokens, i);
                            for (tail, alias) in inner {
                                let mut path = prefix.clone();
                                path.extend(tail);
                                out.push((path, alias));
                            }
                            i = next;
                        }
                        Some(_) => i += 1,
                    }
                }
                return (out, i);
            }
            _ => return (vec![(prefix, None)], i),
        }
        match (tokens.get(i), tokens.get(i + 1)) {
            (Some(Token::PathSep), _) => i += 1,
            (Some(Token::Ident(word)), Some(Token::Ident(alias))) if word == "as" => {
                return (vec![(prefix, Some(alias.clone()))], i + 2);
            }
            _ => return (vec![(prefix, None)], i),
        }
    }
}

/// `path` as named in module `current`, made absolute, if it names a
/// module of the crate at all (else it names another crate or the prelude).
fn resolve(
    current: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut segments = path.iter().peekable();
    let mut base: Vec<String> = match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("self") => {
            segments.next();
            current.to_vec()
        }
        Some("super") => {
            let mut base = current.to_vec();
            while segments.peek().map(|s| s.as_str()) == Some("super") {
                segments.next();
                base.pop();
            }
            base
        }
        Some(first) => {
            let mut child = current.to_vec();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            current.to_vec()
        }
        None => return None,
    };
    base.extend(segments.cloned());
    Some(base)
}

/// The file-level graph of the given crates.
fn graph_of(crates: &[Crate]) -> Graph {
    let mut graph = Graph::new();
    for krate in crates {
        let mut by_module: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
        for file in &krate.files {
            by_module
                .entry(file.module.clone())
                .or_default()
                .push(&file.path);
        }
        let modules: BTreeSet<Vec<String>> = by_module.keys().cloned().collect();
        let named: Vec<Vec<Named>> = krate
            .files
            .iter()
            .map(|file| named_paths(file, &modules))
            .collect();
        // `module::Name` → the path it re-exports.
        let mut reexports: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (file, names) in krate.files.iter().zip(&named) {
            for name in names.iter().filter(|n| n.naming == Naming::Reexports) {
                if let Some(alias) = &name.alias {
                    let mut at = file.module.clone();
                    at.push(alias.clone());
                    reexports.insert(at, name.path.clone());
                }
            }
        }
        for (file, names) in krate.files.iter().zip(&named) {
            let edges = graph.entry(file.path.clone()).or_default();
            for name in names.iter().filter(|n| n.naming == Naming::Uses) {
                let path = through_reexports(name.path.clone(), &by_module, &reexports);
                // A module written twice (`#[cfg]` alternatives) names
                // itself, not its twin.
                if path == file.module {
                    continue;
                }
                for target in by_module.get(&path).into_iter().flatten() {
                    if *target != file.path {
                        edges.insert((*target).to_owned());
                    }
                }
            }
        }
    }
    graph
}

/// The file module `path` names: its longest prefix that is a file, after
/// following the re-exports it goes through to where the item lives.
fn through_reexports(
    mut path: Vec<String>,
    by_module: &BTreeMap<Vec<String>, Vec<&str>>,
    reexports: &BTreeMap<Vec<String>, Vec<String>>,
) -> Vec<String> {
    // Bounded: re-exports may chain, never loop in a crate that compiles.
    for _ in 0..8 {
        let mut prefix = path.clone();
        while !prefix.is_empty() && !by_module.contains_key(&prefix) {
            prefix.pop();
        }
        let Some(next) = path.get(prefix.len()) else {
            return prefix;
        };
        let mut item = prefix.clone();
        item.push(next.clone());
        match reexports.get(&item) {
            Some(target) if *target != item => {
                let mut followed = target.clone();
                followed.extend(path[prefix.len() + 1..].iter().cloned());
                path = followed;
            }
            _ => return prefix,
        }
    }
    path
}

/// Every crate root of the repository: `src/lib.rs`, `src/main.rs` and
/// the integration-test binaries' `main.rs`.
fn crate_roots(repo: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut dirs = vec![repo.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    dirs.push(path);
                }
            } else if (name == "lib.rs" || name == "main.rs")
                && (dir.ends_with("src") || dir.parent().is_some_and(|p| p.ends_with("tests")))
            {
                roots.push(path);
            }
        }
    }
    roots.sort();
    roots
}

/// Each strongly connected group of files (more than one file, or a file
/// naming itself), as a loop through them.
fn loops(graph: &Graph) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut in_a_loop = BTreeSet::new();
    for start in graph.keys() {
        if in_a_loop.contains(start) {
            continue;
        }
        if let Some(cycle) = cycle_from(graph, start) {
            in_a_loop.extend(cycle.iter().cloned());
            found.push(cycle);
        }
    }
    found
}

/// The shortest loop through `start`, if there is one.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut queue = std::collections::VecDeque::from([vec![start.to_owned()]]);
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        let node = path.last().unwrap();
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                queue.push_back(longer);
            }
        }
    }
    None
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn no_file_reaches_back_to_itself() {
    let repo = repository();
    let roots = crate_roots(&repo);
    let crates: Vec<Crate> = roots.iter().map(|root| read_crate(&repo, root)).collect();
    // The reader found the crates a reviewer would look at.
    for expected in [
        "harness/src/lib.rs",
        "host/src/lib.rs",
        "xtask/src/main.rs",
        "harness/tests/all/main.rs",
    ] {
        assert!(
            roots.iter().any(|root| root.ends_with(expected)),
            "no crate root {expected} among {roots:?}"
        );
    }
    let graph = graph_of(&crates);
    assert!(
        graph.len() > 100,
        "only {} files read: the module walk lost its way",
        graph.len()
    );
    let loops: Vec<String> = loops(&graph)
        .into_iter()
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(
        loops.is_empty(),
        "{} import loops between files:\n  {}",
        loops.len(),
        loops.join("\n  ")
    );
}

/// A crate made of the given files (path relative to `src/`, text).
fn synthetic(files: &[(&str, &str)]) -> Graph {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join("src").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let root = dir.path().join("src/lib.rs");
    graph_of(&[read_crate(dir.path(), &root)])
}

#[test]
fn a_loop_through_super_paths_is_seen() {
    let graph = synthetic(&[
        ("lib.rs", "mod cli;"),
        ("cli/mod.rs", "mod check;\nmod foreign;"),
        ("cli/check.rs", "use super::foreign::forward;"),
        ("cli/foreign.rs", "fn f() { super::check::run() }"),
    ]);
    assert_eq!(
        loops(&graph),
        vec![vec![
            "src/cli/check.rs".to_owned(),
            "src/cli/foreign.rs".into(),
            "src/cli/check.rs".into()
        ]]
    );
}

#[test]
fn a_loop_after_cfg_test_in_nested_use_groups_is_seen() {
    let graph = synthetic(&[
        ("lib.rs", "mod a;\nmod b;"),
        (
            "a.rs",
            "pub fn x() {}\n#[cfg(test)]\nmod tests { use crate::{b::{inner::Y}}; }",
        ),
        ("b.rs", "mod inner;\nuse crate::a;"),
        (
            "b/inner.rs",
            "pub struct Y; // crate::a::x is a comment\nconst S: &str = \"crate::a\";",
        ),
    ]);
    assert_eq!(
        graph["src/a.rs"],
        BTreeSet::from(["src/b/inner.rs".to_owned()])
    );
    assert!(
        graph["src/b/inner.rs"].is_empty(),
        "comments and strings are not paths"
    );
    assert!(loops(&graph).is_empty());
    let graph = synthetic(&[
        ("lib.rs", "mod a;\nmod b;"),
        (
            "a.rs",
            "#[cfg(test)]\nmod tests { use crate::{b::{inner::Y}}; }",
        ),
        ("b.rs", "mod inner;"),
        ("b/inner.rs", "fn f() { crate::a::tests::helper() }"),
    ]);
    assert_eq!(loops(&graph).len(), 1);
}

#[test]
fn child_names_self_and_path_attributes_resolve_to_files() {
    let graph = synthetic(&[
        ("lib.rs", "mod os;\nmod plugin_file;"),
        (
            "os/mod.rs",
            "#[cfg(unix)]\n#[path = \"linux.rs\"]\nmod imp;\n#[cfg(windows)]\n#[path = \"windows.rs\"]\nmod imp;\npub struct Pid;\nfn f() { imp::go(); self::imp::go() }",
        ),
        (
            "os/linux.rs",
            "mod zygote;\nfn g() { zygote::start(); self::g() }",
        ),
        ("os/linux/zygote.rs", "use super::super::Pid;"),
        ("os/windows.rs", "fn h() { self::h() }"),
        ("plugin_file.rs", ""),
    ]);
    // `mod.rs` forwards to both `#[cfg]` twins; they do not name each other.
    assert_eq!(
        graph["src/os/mod.rs"],
        BTreeSet::from(["src/os/linux.rs".to_owned(), "src/os/windows.rs".into()])
    );
    assert!(graph["src/os/windows.rs"].is_empty());
    assert_eq!(
        graph["src/os/linux/zygote.rs"],
        BTreeSet::from(["src/os/mod.rs".to_owned()])
    );
    assert_eq!(
        loops(&graph),
        vec![vec![
            "src/os/linux.rs".to_owned(),
            "src/os/linux/zygote.rs".into(),
            "src/os/mod.rs".into(),
            "src/os/linux.rs".into(),
        ]],
        "a folder's own file counts like any other"
    );
}

/// A loop that passes through a folder's `mod.rs` is a loop: the file that
/// dispatches into its folder depends on what it dispatches to.
#[test]
fn a_loop_through_a_folders_own_file_is_seen() {
    let graph = synthetic(&[
        ("lib.rs", "mod a;\nmod b;"),
        ("a/mod.rs", "mod inner;\npub fn f() { inner::g() }"),
        ("a/inner.rs", "use crate::b;\npub fn g() { b::h() }"),
        ("b.rs", "use crate::a;\npub fn h() { a::f() }"),
    ]);
    assert_eq!(loops(&graph).len(), 1, "{graph:?}");
}

/// Who names an item through a re-export depends on the file the item
/// lives in; the `pub use` itself is no edge. A name a `use` brought in
/// takes its module along (`report::junit::write` after `use
/// crate::report;`).
#[test]
fn re_exports_and_use_names_lead_to_the_file_that_defines_the_item() {
    let graph = synthetic(&[
        ("lib.rs", "mod report;\nmod run;\nmod cli;"),
        (
            "report/mod.rs",
            "mod verdict;\npub(crate) mod junit;\npub use verdict::Verdict;",
        ),
        ("report/verdict.rs", "pub enum Verdict { Pass }"),
        ("report/junit.rs", "use super::Verdict;\npub fn write() {}"),
        ("run.rs", "use crate::report::Verdict;"),
        (
            "cli.rs",
            "use crate::report;\nfn f() { report::junit::write() }",
        ),
    ]);
    assert!(
        graph["src/report/mod.rs"].is_empty(),
        "a re-export is no edge"
    );
    assert_eq!(
        graph["src/run.rs"],
        BTreeSet::from(["src/report/verdict.rs".to_owned()])
    );
    assert_eq!(
        graph["src/report/junit.rs"],
        BTreeSet::from(["src/report/verdict.rs".to_owned()])
    );
    assert!(
        graph["src/cli.rs"].contains("src/report/junit.rs"),
        "{:?}",
        graph["src/cli.rs"]
    );
}

/// The three loops the xtask had (issue 27), in their shapes: two files
/// naming each other's items, a loop through a type both used, and a loop
/// of three through `use` groups with `self`.
#[test]
fn the_xtasks_old_loops_are_seen() {
    let graph = synthetic(&[
        (
            "lib.rs",
            "mod bench;\nmod bench_go_native;\nmod conformance;\nmod made_with;\nmod needs;\nmod toolchain;\nmod wine;",
        ),
        (
            "bench.rs",
            "fn run() { crate::bench_go_native::measure() }\npub fn ms() {}",
        ),
        (
            "bench_go_native.rs",
            "pub fn measure() { crate::bench::ms() }",
        ),
        (
            "conformance.rs",
            "pub enum Runner {}\nfn f() { crate::made_with::describe() }",
        ),
        (
            "made_with.rs",
            "use crate::conformance::Runner;\npub fn describe() {}",
        ),
        ("needs.rs", "use crate::{toolchain, wine::find};"),
        ("toolchain.rs", "use crate::needs::{self, MINGW};"),
        ("wine.rs", "use crate::needs::Missing;\npub fn find() {}"),
    ]);
    let found: Vec<String> = loops(&graph)
        .iter()
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert_eq!(
        found,
        [
            "src/bench.rs → src/bench_go_native.rs → src/bench.rs",
            "src/conformance.rs → src/made_with.rs → src/conformance.rs",
            "src/needs.rs → src/toolchain.rs → src/needs.rs",
            "src/wine.rs → src/needs.rs → src/wine.rs",
        ]
    );
}
