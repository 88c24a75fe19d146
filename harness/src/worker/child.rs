//! The worker side: connect back to the parent, then run the cases it asks
//! for against one plugin session.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use super::protocol::{self, FromWorker, ToWorker};
use crate::cases;
use crate::os;
use crate::session::Session;

/// The hidden `__worker` command line.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub connect: SocketAddr,
    #[arg(long)]
    pub token: String,
    #[arg(long)]
    pub plugin: PathBuf,
}

/// Serves batches of cases until the parent hangs up (or kills the worker,
/// which is how a worker normally ends).
pub fn serve(args: WorkerArgs) -> anyhow::Result<()> {
    os::harden_worker();
    // A plugin's child that daemonizes is re-parented to us, where the
    // `shutdown` case can see it.
    os::become_subreaper();
    let stream = TcpStream::connect(args.connect)?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = protocol::LineReader::new(stream);
    protocol::send(
        &mut writer,
        &FromWorker::Hello {
            token: args.token.clone(),
            pid: std::process::id(),
        },
    )?;
    let mut session = Session::new(args.plugin);
    loop {
        let message = match reader.receive::<ToWorker>(None) {
            Ok(Some(message)) => message,
            // The parent hung up: nothing left to do.
            Ok(None) => return Ok(()),
            Err(error) => channel_lost(&error),
        };
        let ToWorker::Run {
            first_seq,
            cases: batch,
            mut ledger,
            settings,
        } = message;
        for (seq, case) in (first_seq..).zip(batch) {
            let started = std::time::Instant::now();
            let result = match ledger.blocked(case) {
                Some(skip) => crate::outcome::CaseResult {
                    outcome: skip,
                    plugin: session.info(),
                },
                None => cases::run(case, &mut session, &settings),
            };
            let work_us = started.elapsed().as_micros() as u64;
            ledger.record(case, &result.outcome);
            mark_case_end(&args.token, seq);
            let sent = protocol::send(
                &mut writer,
                &FromWorker::Done {
                    seq,
                    case,
                    result,
                    work_us,
                    has_loaded: session.has_loaded(),
                    not_run: false,
                },
            );
            if let Err(error) = sent {
                channel_lost(&error);
            }
        }
    }
}

/// The channel to the parent broke under us: the plugin closed, replaced or
/// wrote into a descriptor it did not open. Says so and exits with the code
/// the parent turns into that reason.
fn channel_lost(error: &dyn std::fmt::Display) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "plugcheck worker: lost the channel to the harness: {error}"
    );
    std::process::exit(protocol::EXIT_CHANNEL_LOST)
}

/// Flushes what the plugin printed and writes the case-end marker to both
/// streams, so the parent attributes output to the right case.
fn mark_case_end(token: &str, seq: u64) {
    os::flush_c_stdio();
    let marker = protocol::case_end_marker(token, seq);
    // A plugin may have closed our stdout or stderr: then there is no output
    // to attribute, and nothing to do about the error.
    let _ = std::io::stdout().lock().write_all(marker.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().lock().write_all(marker.as_bytes());
}
