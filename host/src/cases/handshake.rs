//! `descriptor`, `abi-version`, `metadata`: the handshake, read in the order
//! the ABI allows.

use crate::outcome::{Concluded, Outcome};
use crate::plugin::handshake::host_abi;
use crate::plugin::session::Session;

pub(super) fn descriptor(session: &mut Session) -> Concluded {
    let header = session.header()?;
    Ok(Outcome::pass(format!(
        "descriptor header is valid: ABI {}, struct_size {}",
        header.abi(),
        header.struct_size
    ))
    .with_detail(|detail| detail.plugin_abi = Some(header.abi())))
}

pub(super) fn abi_version(session: &mut Session) -> Concluded {
    let header = session.check_version()?;
    Ok(Outcome::pass(format!(
        "plugin ABI {} is accepted by host ABI {}",
        header.abi(),
        host_abi()
    ))
    .with_detail(|detail| {
        detail.plugin_abi = Some(header.abi());
        detail.host_abi = Some(host_abi());
    }))
}

pub(super) fn metadata(session: &mut Session) -> Concluded {
    let info = session.descriptor()?.info.clone();
    let toolchain = info
        .toolchain
        .as_deref()
        .map(|toolchain| format!(", built by {toolchain}"))
        .unwrap_or_default();
    Ok(Outcome::pass(format!(
        "`{}` {}{toolchain}",
        info.name, info.version
    )))
}
