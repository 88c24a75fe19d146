//! What to tell a plugin author whose plugin lacks its entry point: the
//! exported names closest to it (a typo, a prefix, a space in a cgo
//! directive) and the fix in the language the binary was built from.

use crate::inspect::sniff::Language;
use crate::text::one_line;

/// Near misses listed at most.
const MAX_NEAR_MISSES: usize = 3;

/// How close (0..1, Jaro-Winkler) an exported name must be to count.
const NEAR_MISS_SIMILARITY: f64 = 0.8;

/// The sentence after "does not export `plugcheck_entry`".
pub(crate) fn missing_entry(language: Language, exports: &[String]) -> String {
    let entry = plugcheck_abi::ENTRY_SYMBOL;
    let near = near_misses(entry, exports);
    let mut advice = String::new();
    if !near.is_empty() {
        let listed: Vec<String> = near
            .iter()
            .map(|name| format!("`{}`", one_line(name)))
            .collect();
        advice.push_str(&format!(
            "it exports {} instead, which the host does not look for: the name must be exactly `{entry}`; ",
            listed.join(", ")
        ));
    }
    advice.push_str(match language {
        Language::Rust => {
            "export it with `plugcheck_abi::export_plugin! { … }` in a crate with `crate-type = [\"cdylib\"]`"
        }
        Language::Go => {
            "in Go, put `//export plugcheck_entry` (no space after `//`) right above the function, in a file that imports \"C\", and build with -buildmode=c-shared"
        }
        Language::C => {
            "in C, define `PLUGCHECK_EXPORT const plugcheck_plugin *plugcheck_entry(void)` with plugcheck.h included (not `static`; with C++, inside `extern \"C\"`)"
        }
    });
    advice
}

/// Exported names that look like a mistyped `entry`, closest first.
fn near_misses<'a>(entry: &str, exports: &'a [String]) -> Vec<&'a String> {
    let mut scored: Vec<(f64, &String)> = exports
        .iter()
        .filter(|name| name.as_str() != entry)
        .map(|name| {
            let lower = name.to_ascii_lowercase();
            let score = if lower.contains("plugcheck") {
                1.0
            } else {
                strsim::jaro_winkler(&lower, entry)
            };
            (score, name)
        })
        .filter(|(score, _)| *score >= NEAR_MISS_SIMILARITY)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(MAX_NEAR_MISSES)
        .map(|(_, name)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn near_misses_are_named_and_unrelated_exports_are_not() {
        let exports = names(&[
            "plugcheck_entrypoint",
            "helper",
            "_cgo_panic",
            "Plugcheck_Entry",
        ]);
        let advice = missing_entry(Language::C, &exports);
        assert!(
            advice.contains("`plugcheck_entrypoint`") && advice.contains("`Plugcheck_Entry`"),
            "{advice}"
        );
        assert!(
            !advice.contains("helper") && !advice.contains("_cgo_panic"),
            "{advice}"
        );
        assert!(
            advice.contains("plugcheck.h") && !advice.contains("export_plugin"),
            "{advice}"
        );
    }

    #[test]
    fn the_advice_is_in_the_plugins_language() {
        assert!(missing_entry(Language::Go, &[]).contains("//export plugcheck_entry"));
        assert!(missing_entry(Language::Rust, &[]).contains("export_plugin!"));
        assert!(!missing_entry(Language::Go, &[]).contains("instead"));
    }
}
