//! The command line: `serve`, `migrate`, and the commands that act on the instance `serve`
//! runs. Only `serve` and `migrate` create a database or its tables: the others open the
//! existing one (`db::open_existing`) and refuse, saying where they looked, when it is missing
//! or not this version's.

use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::config::{Settings, ENVIRONMENT_HELP};
use crate::core::audit;
use crate::core::clock::now;
use crate::core::status::PetitionStatus;
use crate::organizers::accounts::{self, Role};
use crate::organizers::api_tokens;
use crate::organizers::passwords::{self, Password};
use crate::petitions::model::PetitionInput;
use crate::petitions::{demo, queries};
use crate::{db, Application};

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
    /// Create or update the database schema (and the data key, if absent), then exit.
    Migrate,
    /// Manage petitions.
    Petition {
        #[command(subcommand)]
        action: PetitionCommand,
    },
    /// Manage organizer and admin accounts.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Manage API tokens for the organizer API.
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Export a petition's confirmed signatures as CSV, NDJSON or a PDF dossier.
    Export(crate::exports::command::ExportArgs),
    /// Write the signed delivery bundle for a petition's recipients.
    Deliver(crate::delivery::command::DeliverArgs),
    /// Check a delivery bundle offline.
    Verify(crate::delivery::command::VerifyArgs),
    /// Apply the retention rules now (the server does it daily) and say what was removed.
    Purge {
        /// Count what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The instance's signing key for delivery bundles.
    Key {
        #[command(subcommand)]
        action: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the public key (and its fingerprint) that verifies this instance's bundles.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is asked for, or read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_name = "admin|organizer")]
        role: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account.
    List,
    /// Set a new password (signs the account out everywhere).
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for an account; the token is printed once, alone on the last line.
    Create {
        /// The account's email.
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "API token")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PetitionCommand {
    /// Create a petition (open, unless --draft) and print its URL.
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
    /// An account that runs the petition; repeat for several.
    #[arg(long = "organizer", value_name = "EMAIL")]
    organizers: Vec<String>,
    /// Create it as a draft, invisible to the public until opened.
    #[arg(long)]
    draft: bool,
    /// Print the URL under UNDERSIGN_BASE_URL even where the server recorded another.
    #[arg(long)]
    use_env_base_url: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Serve { demo } => crate::web::block_on(serve(settings, demo)),
        Command::Migrate => {
            let pool = db::connect(&settings.database_url, 1)?;
            // Sets up the instance as a first start would: the other commands need its key.
            crate::safety::encryption::open_data_key(&pool, &settings.data_key_file)?;
            let url = db::DatabaseUrl::parse(&settings.database_url)?;
            println!("Database {} is up to date.", url.redacted());
            Ok(())
        }
        Command::Petition { action } => match action {
            PetitionCommand::Create(args) => create_petition(&settings, args),
            PetitionCommand::List => list_petitions(&settings),
        },
        Command::User { action } => match action {
            UserCommand::Create {
                email,
                role,
                password_stdin,
            } => create_user(&settings, &email, &role, password_stdin),
            UserCommand::List => list_users(&settings),
            UserCommand::SetPassword {
                email,
                password_stdin,
            } => set_password(&settings, &email, password_stdin),
        },
        Command::Token { action } => match action {
            TokenCommand::Create { user, name } => create_token(&settings, &user, &name),
        },
        Command::Export(args) => crate::exports::command::run(&settings, args),
        Command::Deliver(args) => crate::delivery::command::deliver(&settings, args),
        Command::Verify(args) => crate::delivery::command::verify(args),
        Command::Purge { dry_run } => crate::retention::command(&settings, dry_run),
        Command::Key { action } => match action {
            KeyCommand::Show => crate::delivery::command::show_key(&settings),
        },
    }
}

/// Reads a password from standard input (first line) or from an interactive prompt, twice.
fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    let raw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password (12 to 1024 characters): ")
            .context("cannot read the password (use --password-stdin without a terminal)")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        first
    };
    Password::parse(&raw).map_err(|problem| anyhow::anyhow!(problem))
}

fn create_user(
    settings: &Settings,
    email: &str,
    role: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email = accounts::parse_account_email(email).map_err(|e| anyhow::anyhow!(e))?;
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!(e))?;
    // Before the password is asked for: a missing database is said first.
    let pool = db::open_existing(&settings.database_url, 1)?;
    let password = read_password(password_stdin)?;
    let hash = passwords::hash(&password)?;
    let mut conn = pool.get()?;
    let user = accounts::create(&mut conn, &email, role, &hash, now())?;
    audit::record(
        &mut conn,
        None,
        None,
        "user.create",
        &format!("{} ({}) from the command line", user.email, role.as_str()),
        now(),
    )?;
    println!("Created the {} account {}.", role.as_str(), user.email);
    Ok(())
}

fn list_users(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::open_existing(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    let users = accounts::list(&mut conn)?;
    if users.is_empty() {
        println!("No accounts yet. Create one with `undersign user create`.");
        return Ok(());
    }
    println!("{:<40} {:<10} CREATED", "EMAIL", "ROLE");
    for user in users {
        println!(
            "{:<40} {:<10} {}",
            user.email,
            user.role,
            user.created_at.format("%Y-%m-%d")
        );
    }
    Ok(())
}

fn set_password(settings: &Settings, email: &str, password_stdin: bool) -> anyhow::Result<()> {
    let pool = db::open_existing(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    let user = accounts::find_by_email(&mut conn, email)?
        .with_context(|| format!("there is no account for {email}"))?;
    let password = read_password(password_stdin)?;
    let hash = passwords::hash(&password)?;
    accounts::set_password_hash(&mut conn, user.id, &hash, now())?;
    audit::record(
        &mut conn,
        None,
        None,
        "user.set_password",
        &user.email,
        now(),
    )?;
    println!(
        "The password of {} was changed; its sessions have ended.",
        user.email
    );
    Ok(())
}

fn create_token(settings: &Settings, email: &str, name: &str) -> anyhow::Result<()> {
    let name = crate::web::admin::workspace::token_name(name)?;
    let pool = db::open_existing(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    let user = accounts::find_by_email(&mut conn, email)?
        .with_context(|| format!("there is no account for {email}"))?;
    let (_, secret) = api_tokens::create(&mut conn, user.id, &name, now())?;
    audit::record(&mut conn, Some(user.id), None, "token.create", &name, now())?;
    println!(
        "API token {name:?} for {}. It is shown only this once:",
        user.email
    );
    println!("{secret}");
    Ok(())
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
    let mut petition = input
        .parse(now().date())
        .map_err(|problems| anyhow::anyhow!("the petition was not created:\n{problems}"))?;
    if args.draft {
        petition.status = PetitionStatus::Draft;
    }
    let pool = db::open_existing(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    // Known before anything is created: the printed URL is the one people will be sent.
    let base_url = db::instance::base_url_for_command(
        &mut conn,
        settings.base_url.as_deref(),
        args.use_env_base_url,
    )?;
    for email in &args.organizers {
        let user = accounts::find_by_email(&mut conn, email)?.with_context(|| {
            format!("there is no account for {email}: create it with `undersign user create`")
        })?;
        petition.organizer_ids.push(user.id);
    }
    let created = queries::create(&mut conn, &petition, now())?;
    println!("{base_url}/p/{}", created.slug);
    Ok(())
}

fn list_petitions(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::open_existing(&settings.database_url, 1)?;
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
