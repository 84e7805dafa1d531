//! The `distillguard` binary: a thin shell over the library. Errors are printed once, on stderr,
//! and mapped to the exit codes documented in the README.

use clap::Parser;

mod cli;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("distillguard: error: {e}");
        std::process::exit(e.exit_code());
    }
}
