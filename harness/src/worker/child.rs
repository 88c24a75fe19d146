//! The worker side: connect back to the parent, then run the cases it asks
//! for against one plugin session.

use std::io::{BufReader, Write};
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

/// Serves cases until the parent says quit or hangs up.
pub fn serve(args: WorkerArgs) -> anyhow::Result<()> {
    // A plugin's child that daemonizes is re-parented to us, where the
    // `shutdown` case can see it.
    os::become_subreaper();
    let stream = TcpStream::connect(args.connect)?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    protocol::send(
        &mut writer,
        &FromWorker::Hello {
            token: args.token.clone(),
            pid: std::process::id(),
        },
    )?;
    let mut session = Session::new(args.plugin);
    while let Some(message) = protocol::receive::<ToWorker>(&mut reader)? {
        match message {
            ToWorker::Run {
                seq,
                case,
                settings,
            } => {
                let result = cases::run(case, &mut session, &settings);
                mark_case_end(&args.token, seq);
                protocol::send(
                    &mut writer,
                    &FromWorker::Done {
                        seq,
                        result,
                        has_loaded: session.has_loaded(),
                    },
                )?;
            }
            ToWorker::Quit => break,
        }
    }
    Ok(())
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
