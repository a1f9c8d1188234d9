use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First, before any command creates a file (a database, a key, an export).
    undersign::keep_new_files_private();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = undersign::cli::Cli::parse();
    match undersign::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            // `undersign verify` tells apart a failed check, a bundle it could not check and
            // one whose signer is not authenticated.
            error
                .downcast_ref::<undersign::delivery::command::VerifyFailure>()
                .map_or(ExitCode::FAILURE, |failure| {
                    ExitCode::from(failure.exit_status())
                })
        }
    }
}
