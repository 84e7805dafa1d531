//! The `distillguard` binary: a thin shell over the library. Errors are printed once, on stderr,
//! and mapped to the exit codes documented in the README.

use clap::Parser;

fn main() {
    let cli = distillguard::cli::Cli::parse();
    if let Err(e) = distillguard::cli::run(cli) {
        eprintln!("distillguard: error: {e}");
        std::process::exit(e.exit_code());
    }
}
