//! The command line: `serve`, `migrate`, `petition create|list`.

use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::config::{Settings, ENVIRONMENT_HELP};
use crate::petitions::model::PetitionInput;
use crate::petitions::{demo, queries};
use crate::{db, now, Application};

#[derive(Debug, Parser)]
#[command(name = "undersign", version, about = "Petitions with email-confirmed signatures, exact live counts and verifiable delivery.", after_help = ENVIRONMENT_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the web server (migrates the database first).
    Serve {
        /// Seed the demo petition if it is absent.
        #[arg(long)]
        demo: bool,
    },
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage petitions.
    Petition {
        #[command(subcommand)]
        action: PetitionCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PetitionCommand {
    /// Create an open petition and print its URL.
    Create(CreatePetition),
    /// List every petition with its status and confirmed count.
    List,
}

#[derive(Debug, Args)]
pub struct CreatePetition {
    /// The address of the petition: /p/SLUG (lowercase letters, digits, hyphens).
    #[arg(long)]
    slug: String,
    #[arg(long)]
    title: String,
    /// A Markdown file with the petition's text.
    #[arg(long, value_name = "FILE")]
    body_file: PathBuf,
    /// One or two sentences shown in lists.
    #[arg(long, value_name = "TEXT", default_value = "")]
    summary: String,
    /// Who the petition is addressed to, as "Name, Role"; repeat for several.
    #[arg(long = "target", value_name = "NAME, ROLE")]
    targets: Vec<String>,
    /// The number of signatures aimed for.
    #[arg(long)]
    goal: Option<i64>,
    /// The last day signatures are collected (UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    closes_at: Option<NaiveDate>,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Serve { demo } => actix_web::rt::System::new().block_on(serve(settings, demo)),
        Command::Migrate => {
            db::connect(&settings.database_url, 1)?;
            let url = db::DatabaseUrl::parse(&settings.database_url)?;
            println!("Database {} is up to date.", url.redacted());
            Ok(())
        }
        Command::Petition { action } => match action {
            PetitionCommand::Create(args) => create_petition(&settings, args),
            PetitionCommand::List => list_petitions(&settings),
        },
    }
}

async fn serve(settings: Settings, seed_demo: bool) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    if seed_demo {
        let pool = app.pool().clone();
        let seeded = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let mut conn = pool.get()?;
            Ok(demo::seed_if_absent(&mut conn, now())?)
        })
        .await??;
        if seeded {
            log::info!("seeded the demo petition");
        }
        log::info!("demo petition: {}/p/{}", app.base_url(), demo::DEMO_SLUG);
    }
    log::info!("undersign is listening on {}", app.base_url());
    app.run_until_stopped().await?;
    Ok(())
}

fn public_base_url(settings: &Settings) -> String {
    settings
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.bind))
}

fn create_petition(settings: &Settings, args: CreatePetition) -> anyhow::Result<()> {
    let body = std::fs::read_to_string(&args.body_file)
        .with_context(|| format!("cannot read the body file {}", args.body_file.display()))?;
    let input = PetitionInput {
        slug: args.slug,
        title: args.title,
        summary: args.summary,
        body,
        targets: args.targets,
        goal: args.goal,
        closes_on: args.closes_at,
    };
    let petition = input
        .parse(now().date())
        .map_err(|problems| anyhow::anyhow!("the petition was not created:\n{problems}"))?;
    let pool = db::connect(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    let created = queries::create(&mut conn, &petition, now())?;
    println!("{}/p/{}", public_base_url(settings), created.slug);
    Ok(())
}

fn list_petitions(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::connect(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    let petitions = queries::list_all(&mut conn)?;
    if petitions.is_empty() {
        println!("No petitions yet. Create one with `undersign petition create`.");
        return Ok(());
    }
    let now = now();
    println!(
        "{:<40} {:<10} {:>10}  TITLE",
        "SLUG", "STATUS", "SIGNATURES"
    );
    for petition in petitions {
        println!(
            "{:<40} {:<10} {:>10}  {}",
            petition.slug,
            petition.status_at(now).as_str(),
            petition.signature_count,
            petition.title
        );
    }
    Ok(())
}
