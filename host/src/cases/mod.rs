//! How each case runs inside the worker. `run` is an exhaustive match over
//! the catalog; the bodies are free functions grouped by topic.

mod context;
mod crash;
mod handshake;
mod hygiene;
mod instances;
mod lifecycle;
mod loading;
mod reload;
mod reload_build;
mod state;

use self::crash::Announce;

/// How soon a cancelled ABI 1.1 call must end (`cancel-honoured`'s bound,
/// and the grace an embedding host gives a cancelled call before it kills
/// the worker).
pub(crate) const CANCEL_SOON: std::time::Duration = context::SOON;
pub(crate) use self::context::case_timeout;
use crate::catalog::CaseId;
use crate::outcome::{CaseResult, CaseSettings};
use crate::plugin::session::Session;

/// Runs one case against the session. `announce` hears of each fuzz call
/// before it is made, so a death during one can be pinned on it.
pub(crate) fn run(
    case: CaseId,
    session: &mut Session,
    settings: &CaseSettings,
    announce: &mut Announce<'_>,
) -> CaseResult {
    let result = match case {
        CaseId::Load => loading::load(session),
        CaseId::LookupEntry => loading::lookup_entry(session),
        CaseId::Descriptor => handshake::descriptor(session),
        CaseId::AbiVersion => handshake::abi_version(session),
        CaseId::Metadata => handshake::metadata(session),
        CaseId::Init => lifecycle::init(session),
        CaseId::LookupMethods => lifecycle::lookup_methods(session),
        CaseId::Selftest => lifecycle::selftest(session),
        CaseId::StateRoundtrip => state::state_roundtrip(session, settings),
        CaseId::Shutdown => lifecycle::shutdown(session, settings),
        CaseId::Unload => hygiene::unload(session),
        CaseId::LoadTime => hygiene::load_time(session, settings),
        CaseId::RepeatLoad => hygiene::repeat_load(session, settings),
        CaseId::ReloadSameVersion => reload::same_version(session, settings),
        CaseId::ReloadUpgrade => reload::upgrade(session, settings),
        CaseId::ReloadBrokenUpgrade => reload::broken_upgrade(session, settings),
        CaseId::ReloadAbiMismatch => reload::abi_mismatch(session, settings),
        CaseId::ReloadWhileCalling => reload::while_calling(session, settings),
        CaseId::ReloadReplaceWhileLoaded => reload::replace_while_loaded(session, settings),
        CaseId::ReloadUnloadVerified => reload::unload_verified(session, settings),
        CaseId::ReloadCycles => reload::cycles(session, settings),
        CaseId::FuzzMethods => crash::fuzz_methods(session, settings, announce),
        CaseId::InstancesIsolated => instances::instances_isolated(session, settings),
        CaseId::TraceInLogs => context::trace_in_logs(session, settings),
        CaseId::DeadlineVisible => context::deadline_visible(session),
        CaseId::CancelHonoured => context::cancel_honoured(session),
    };
    let mut outcome = result.unwrap_or_else(|failure| failure);
    if let Some(host) = session.host() {
        outcome.detail.logs.extend(host.take_logs());
    }
    CaseResult {
        outcome,
        plugin: session.info(),
    }
}
