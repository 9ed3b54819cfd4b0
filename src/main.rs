//! The `onebox` command: parses the CLI, loads configuration, starts telemetry and calls into
//! the library. Every failure ends in one readable message and a non-zero exit.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use onebox::app::App;
use onebox::auth::Role;
use onebox::backup;
use onebox::config::Settings;
use onebox::jobs::{JobName, Trigger};
use onebox::services::identity;

// mimalloc: request handling allocates many small, short-lived objects; glibc malloc spent a
// quarter of the CPU on them under load (perf, list endpoint). Its `override` feature makes it
// SQLite's malloc too: with glibc's per-thread arenas each reader thread kept ~25 MB; peak RSS
// under point reads on 1M rows fell from 79 to 63 MB and req/s rose 13% (bench, 2 cores).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "onebox", version, about = "A backend in one binary")]
struct Cli {
    /// Data directory (database, secret key, default config file).
    #[arg(long, global = true, env = "ONEBOX_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Config file (default: <data-dir>/onebox.toml when present).
    #[arg(long, global = true, env = "ONEBOX_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default command).
    Serve {
        #[arg(long)]
        address: Option<std::net::IpAddr>,
        #[arg(long)]
        port: Option<u16>,
    },
    /// Manage admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Take, list and verify backups.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Restore a backup over the data dir's database (the server must be stopped). The current
    /// database is kept beside it as onebox.db.before-restore-<time>.
    Restore {
        /// A backup id, or `latest` (the default).
        #[arg(default_value = "latest")]
        id: String,
        /// Only look on this target (`local` or `s3`).
        #[arg(long)]
        from: Option<String>,
        /// Restore the newest backup taken at or before this time (RFC 3339, e.g.
        /// 2026-11-20T18:00:00Z).
        #[arg(long, conflicts_with = "id")]
        at: Option<String>,
        /// The age identity file, for encrypted backups.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Run scheduled jobs by hand and see their runs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (once).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Lifetime such as 30d, 12h, 90m or 1w (default: never expires).
        #[arg(long)]
        expires: Option<String>,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Take a backup now and store it on every target.
    Now,
    /// List the backups on every target.
    List {
        #[arg(long)]
        from: Option<String>,
    },
    /// Download backups (all, or one) and check them against their manifests.
    Verify {
        id: Option<String>,
        #[arg(long)]
        from: Option<String>,
        /// The age identity file: with it, encrypted backups are decrypted and checked too.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run a job now and wait for it: backup, prune or optimize.
    Run { name: String },
    /// The latest job runs.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it with secrets redacted.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onebox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve {
        address: None,
        port: None,
    });
    if let Command::Version = command {
        println!("onebox {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let mut settings = Settings::load(&cli.data_dir, cli.config.as_deref())?;
    if let Command::Config {
        command: ConfigCommand::Check,
    } = command
    {
        print!("{}", settings.describe());
        return Ok(());
    }
    onebox::observe::init_tracing(settings.log_format, &settings.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers as usize)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Serve { address, port } => {
                if let Some(a) = address {
                    settings.address = a;
                }
                if let Some(p) = port {
                    settings.port = p;
                }
                serve(settings).await
            }
            Command::Admin {
                command: AdminCommand::Create { email, .. },
            } => create_user(settings, &email, Role::Admin).await,
            Command::User {
                command: UserCommand::Create { email, role, .. },
            } => {
                let role = if role == "admin" {
                    Role::Admin
                } else {
                    Role::User
                };
                create_user(settings, &email, role).await
            }
            Command::Token {
                command:
                    TokenCommand::Create {
                        email,
                        name,
                        expires,
                    },
            } => {
                let app = App::start(settings).await?;
                let created =
                    identity::create_token_for_email(&app, &email, &name, expires.as_deref())
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", identity::describe(&e)))?;
                println!("{}", created.token);
                eprintln!(
                    "token {} created for {email}; it is shown only once{}",
                    created.info.id,
                    created
                        .info
                        .expires
                        .as_deref()
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                );
                Ok(())
            }
            Command::Backup { command } => backup_command(settings, command).await,
            Command::Restore {
                id,
                from,
                at,
                identity,
            } => restore(settings, id, from, at, identity).await,
            Command::Jobs { command } => jobs_command(settings, command).await,
            Command::Config { .. } | Command::Version => Ok(()),
        }
    })
}

/// Read a password from standard input: the first line, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

async fn create_user(settings: Settings, email: &str, role: Role) -> anyhow::Result<()> {
    let password = read_password()?;
    let app = App::start(settings).await?;
    let user = identity::create_user(&app, None, email, &password, role)
        .await
        .map_err(|e| anyhow::anyhow!("{}", identity::describe(&e)))?;
    println!("created {} {} ({})", role_name(role), user.email, user.id);
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
    }
}

async fn backup_command(settings: Settings, command: BackupCommand) -> anyhow::Result<()> {
    match command {
        BackupCommand::Now => run_job(settings, JobName::Backup).await,
        BackupCommand::List { from } => {
            let listing = backup::list(&settings, from.as_deref()).await?;
            for problem in &listing.unreachable {
                eprintln!("onebox: warning: {problem}; listing the other targets");
            }
            if listing.items.is_empty() {
                eprintln!("no backups yet");
            }
            for l in listing.items {
                let m = &l.manifest;
                println!(
                    "{}  {:<5}  {}  {:>9} → {:>9}{}  seq {}",
                    m.id,
                    l.target,
                    m.created,
                    backup::human_bytes(m.db_bytes),
                    backup::human_bytes(m.file_bytes),
                    if m.encrypted { "  encrypted" } else { "" },
                    m.change_seq
                );
            }
            Ok(())
        }
        BackupCommand::Verify { id, from, identity } => {
            let results = backup::verify(
                &settings,
                from.as_deref(),
                id.as_deref(),
                identity.as_deref(),
            )
            .await?;
            if results.is_empty() {
                eprintln!("no backups to verify");
            }
            let mut failed = 0;
            for v in &results {
                match &v.result {
                    Ok(what) => println!("{}  {:<5}  {what}", v.id, v.target),
                    Err(why) => {
                        failed += 1;
                        println!("{}  {:<5}  FAILED: {why}", v.id, v.target);
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} backups failed verification", results.len());
            }
            Ok(())
        }
    }
}

async fn restore(
    settings: Settings,
    id: String,
    from: Option<String>,
    at: Option<String>,
    identity: Option<PathBuf>,
) -> anyhow::Result<()> {
    let at = match at {
        Some(t) => Some(
            onebox::time::parse(&t)
                .with_context(|| format!("--at {t:?} is not an RFC 3339 time"))?,
        ),
        None => None,
    };
    // Held until the restore ends: no server may start on the data dir meanwhile.
    let _lock = onebox::app::lock_data_dir(&settings)
        .map_err(|e| anyhow::anyhow!("{e}; stop it before restoring"))?;
    let choice = backup::restore::Choice {
        id: (id != "latest").then_some(id),
        from,
        at,
        identity,
    };
    let restored = backup::restore::restore(&settings, &choice).await?;
    let m = &restored.manifest;
    println!(
        "restored backup {} (taken {}, change seq {}) from the {} target",
        m.id, m.created, m.change_seq, restored.target
    );
    if let Some(aside) = restored.kept_aside {
        println!("the previous database is kept at {}", aside.display());
    }
    Ok(())
}

async fn jobs_command(settings: Settings, command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::Run { name } => {
            let job = JobName::parse(&name)
                .with_context(|| format!("no job {name:?} (jobs: backup, prune, optimize)"))?;
            run_job(settings, job).await
        }
        JobsCommand::List { limit } => {
            let app = App::start(settings).await?;
            for run in app.jobs.recent(None, limit).await? {
                println!(
                    "{:>6}  {:<8}  {:<8}  {:<7}  {}  {}",
                    run.id,
                    run.job,
                    run.trigger,
                    run.status,
                    run.started,
                    run.detail.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// Run a job in this process, recorded like any other run; fails when the job fails.
async fn run_job(settings: Settings, job: JobName) -> anyhow::Result<()> {
    let app = App::start(settings).await?;
    let outcome = app.jobs.run_now(job, Trigger::Cli).await?;
    if !outcome.ok {
        bail!(
            "{} failed (run {}): {}",
            job.as_str(),
            outcome.run_id,
            outcome.detail
        );
    }
    println!("{}", outcome.detail);
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Held while serving: a second server or `onebox restore` on this data dir is refused.
    let _lock = onebox::app::lock_data_dir(&settings)?;
    let app = App::start(settings).await?;
    app.jobs.recover().await.context("checking job runs")?;
    let scheduler = app.jobs.schedule().await?;
    let setup_token = onebox::services::setup::prepare(&app)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("preparing first-run setup")?;
    // After the start-up writes above: ANALYZE holds the write lock while it reads.
    app.db
        .optimize_in_background()
        .context("starting the planner statistics thread")?;
    let rocket = onebox::app::build_rocket(app).attach(rocket::fairing::AdHoc::on_liftoff(
        "announce",
        move |rocket| {
            Box::pin(async move {
                let c = rocket.config();
                let scheme = if c.tls_enabled() { "https" } else { "http" };
                // On stdout, so scripts and tests started with --port 0 learn the port.
                println!("onebox listening on {scheme}://{}:{}", c.address, c.port);
                // The setup link goes to stdout only, never to the log: it is a credential.
                if let Some(token) = setup_token {
                    println!(
                        "onebox setup: no admin yet. Open {scheme}://{}:{}/setup/{token} within \
                         an hour to create one (or run `onebox admin create`).",
                        c.address, c.port
                    );
                }
                let _ = std::io::Write::flush(&mut std::io::stdout());
                tracing::info!(address = %c.address, port = c.port, "listening");
            })
        },
    ));
    rocket.launch().await.context("serving")?;
    drop(scheduler);
    Ok(())
}
