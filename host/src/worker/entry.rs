//! How a worker process comes to serve: started as a program (`PROGRAM
//! __worker …`, plugcheck's or an embedding application's), or forked
//! from a spare or the zygote with its assignment as data. Both the
//! harness's `main` and [`crate::embed::serve_if_worker`] come here, so a
//! worker is the same whichever program it runs in.

use clap::Parser;

use super::child::{WorkerArgs, serve};

/// The command line a worker started as a program has: `__worker` and its
/// arguments, and nothing else (plugcheck's own command line parses the
/// same words, with its other commands beside them).
#[derive(Debug, Parser)]
#[command(name = "plugcheck")]
struct WorkerLine {
    #[command(subcommand)]
    command: WorkerOnly,
}

#[derive(Debug, clap::Subcommand)]
enum WorkerOnly {
    #[command(name = "__worker")]
    Worker(WorkerArgs),
}

/// The exit code of a worker that served to the end.
const SERVED: u8 = 0;
/// The exit code of a worker that could not serve (its arguments, its
/// channel): the harness's "error" code.
const NOT_SERVED: u8 = 2;

/// A worker started as a program: parses `__worker …` from this process's
/// command line and serves, to its exit code. A line that is not one exits
/// here with clap's usage error.
pub fn main_worker() -> u8 {
    let WorkerOnly::Worker(args) = WorkerLine::try_parse()
        .unwrap_or_else(|error| error.exit())
        .command;
    serve_to_code(args)
}

/// A worker forked from a spare or the zygote: its assignment, as data
/// rather than a command line to parse, and the descriptor its channel end
/// arrived on, to its exit code.
pub fn forked_worker(assignment: &[u8], channel: Option<i32>) -> i32 {
    match serde_json::from_slice::<WorkerArgs>(assignment) {
        Ok(mut args) => {
            args.channel_fd = channel.or(args.channel_fd);
            i32::from(serve_to_code(args))
        }
        Err(error) => {
            eprintln!("error: the worker's assignment is not one: {error}");
            i32::from(NOT_SERVED)
        }
    }
}

/// Serves `args`; an error is printed once, here.
pub fn serve_to_code(args: WorkerArgs) -> u8 {
    match serve(args) {
        Ok(()) => SERVED,
        Err(error) => {
            eprintln!("error: {error:#}");
            NOT_SERVED
        }
    }
}
