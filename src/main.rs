use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = crm::cli::Cli::parse();
    crm::telemetry::init(cli.log_format);
    crm::cli::run(cli).await
}
