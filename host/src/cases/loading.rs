//! `load` and `lookup-entry`.

use crate::outcome::{Concluded, Outcome};
use crate::plugin::session::Session;

pub(super) fn load(session: &mut Session) -> Concluded {
    session.load()?;
    let loaded = session.loaded().expect("loaded above");
    let description = loaded.sniffed().description.clone();
    Ok(
        Outcome::pass(format!("{description}; loaded with immediate binding"))
            .with_detail(|detail| detail.file_format = Some(description)),
    )
}

pub(super) fn lookup_entry(session: &mut Session) -> Concluded {
    session.entry()?;
    Ok(Outcome::pass(format!(
        "`{}` is exported",
        plugcheck_abi::ENTRY_SYMBOL
    )))
}
