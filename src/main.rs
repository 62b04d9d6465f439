use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    crm::telemetry::init();
    crm::cli::run(crm::cli::Cli::parse()).await
}
