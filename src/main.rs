use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = lhs_rounds::platform::config::Cli::parse();
    lhs_rounds::platform::telemetry::init_logging(
        &cli.settings.log_filter,
        cli.settings.log_format,
    );
    match lhs_rounds::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("lhs-rounds: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
