use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = lhs_rounds::config::Cli::parse();
    env_logger::Builder::new()
        .parse_filters(&cli.settings.log_filter)
        .init();
    match lhs_rounds::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("lhs-rounds: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
