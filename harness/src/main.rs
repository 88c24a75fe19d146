use std::process::ExitCode;

fn main() -> ExitCode {
    plugcheck::cli::main()
}
