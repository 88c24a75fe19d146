//! Which plugin a host's entry serves: the name its first load gave.
//! Every later load of the entry — a worker's restart, a reload, a load
//! after an idle unload or an eviction, in either mode — must give the
//! same name, as the reload engine requires of a reload in process:
//! another plugin would be handed a state it cannot know, and calls it
//! was never written for (a wrong build path, most often).

use std::sync::Mutex;

use crate::text::{clip, one_line};

/// The name an entry's first load gave, once it has loaded.
#[derive(Debug, Default)]
pub(crate) struct Identity(Mutex<Option<String>>);

impl Identity {
    /// Whether a load that gave `name` is of the entry's plugin (the first
    /// load's name becomes it); what to say when it is not. Both names are
    /// a plugin's: escaped, and clipped.
    pub(crate) fn check(&self, name: &str) -> Result<(), String> {
        let mut known = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match known.get_or_insert_with(|| name.to_owned()) {
            known if known != name => Err(format!(
                "the build is the plugin `{}`, not `{}`: a plugin is only replaced by a build of the same name (is the build path right?)",
                clip(&one_line(name), 200),
                clip(&one_line(known), 200)
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_name_is_the_plugins_and_another_is_refused_by_both_names() {
        let identity = Identity::default();
        assert_eq!(identity.check("echo"), Ok(()));
        assert_eq!(identity.check("echo"), Ok(()));
        let said = identity.check("c-echo\u{1b}").unwrap_err();
        assert!(
            said.starts_with("the build is the plugin `c-echo\\u{1b}`, not `echo`"),
            "{said}"
        );
        // Refused, it did not become the plugin's name.
        assert_eq!(identity.check("echo"), Ok(()));
    }
}
