//! Building and running the HTTP server: `Application::build`, `port`,
//! `run_until_stopped`.
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, ContentType, WWW_AUTHENTICATE};
use actix_web::{App, Either, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql_actix_web::GraphQLResponse;
use chrono::Duration as TokenTtl;
use sea_orm::DatabaseConnection;

use crate::auth::{JwtKeys, Role};
use crate::clock::SharedClock;
use crate::config::{Settings, redact_url};
use crate::error::AppError;
use crate::events::EventBus;
use crate::graphql::{self, ApiContext, CrmSchema, error_codes::error_body};
use crate::jobs::expiry_sweep;
use crate::live::{self, LiveState};
use crate::store;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long in-flight requests get to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Lifetime of the tokens printed in development mode.
pub const DEV_TOKEN_TTL: TokenTtl = TokenTtl::hours(12);

/// How the application runs besides its settings.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Run the background expiry sweep.
    pub sweep: bool,
    /// Stop gracefully on SIGINT/SIGTERM (off for in-process tests).
    pub handle_signals: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            sweep: true,
            handle_signals: true,
        }
    }
}

/// Tokens printed by `crm serve` in development mode.
#[derive(Clone, Debug)]
pub struct DevTokens {
    pub admin: String,
    pub agent: String,
}

struct AppState {
    schema: CrmSchema,
    jwt: JwtKeys,
    db: DatabaseConnection,
}

pub struct Application {
    port: u16,
    server: Server,
    db: DatabaseConnection,
    sweeper: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Sender<bool>,
    )>,
    dev_tokens: Option<DevTokens>,
    /// The event listener (PostgreSQL) and its stop signal.
    events: (
        Option<tokio::task::JoinHandle<()>>,
        tokio::sync::watch::Sender<bool>,
    ),
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {url}: {source}")]
    Database { url: String, source: sea_orm::DbErr },
    #[error("cannot migrate the database: {0}")]
    Migration(sea_orm::DbErr),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot issue development tokens: {0}")]
    Tokens(AppError),
    #[error("{0}")]
    WeakSecret(String),
    #[error("cannot listen for events: {0}")]
    Events(sea_orm::sqlx::Error),
}

impl Application {
    /// Connect, migrate, build the schema and bind the listener.
    pub async fn build(
        settings: Settings,
        clock: SharedClock,
        options: RunOptions,
    ) -> Result<Self, StartupError> {
        if let Some(secret) = &settings.jwt_secret {
            crate::auth::check_secret(secret).map_err(StartupError::WeakSecret)?;
        }
        let db = store::connect(&settings.database_url)
            .await
            .map_err(|source| StartupError::Database {
                url: redact_url(&settings.database_url),
                source,
            })?;
        store::migrate(&db).await.map_err(StartupError::Migration)?;

        let (jwt, dev_tokens) = match &settings.jwt_secret {
            Some(secret) => (
                JwtKeys::hs256(
                    secret.as_bytes(),
                    &settings.jwt_issuer,
                    &settings.jwt_audience,
                ),
                None,
            ),
            None => {
                let secret = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                let jwt = JwtKeys::hs256(
                    secret.as_bytes(),
                    &settings.jwt_issuer,
                    &settings.jwt_audience,
                );
                let now = chrono::Utc::now();
                let tokens = DevTokens {
                    admin: jwt
                        .issue(Role::Admin, "dev-admin", DEV_TOKEN_TTL, now)
                        .map_err(StartupError::Tokens)?,
                    agent: jwt
                        .issue(Role::Agent, "dev-agent", DEV_TOKEN_TTL, now)
                        .map_err(StartupError::Tokens)?,
                };
                (jwt, Some(tokens))
            }
        };

        let policy = settings.expiry_policy();
        let schema = graphql::build_schema(ApiContext {
            db: db.clone(),
            policy: Arc::new(policy.clone()),
            clock: clock.clone(),
        });
        let (events_stop, events_stop_rx) = tokio::sync::watch::channel(false);
        let (bus, event_listener) = EventBus::start(&db, &settings.database_url, events_stop_rx)
            .await
            .map_err(StartupError::Events)?;
        let (going_away, going_away_rx) = tokio::sync::watch::channel(false);
        if options.handle_signals {
            tokio::spawn(live::watch_shutdown_signals(going_away));
        }
        let live_state = web::Data::new(LiveState::new(
            schema.clone(),
            jwt.clone(),
            bus,
            going_away_rx,
        ));
        let state = web::Data::new(AppState {
            schema,
            jwt,
            db: db.clone(),
        });

        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: settings.bind.clone(),
                source,
            })?
            .port();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(live_state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .route("/graphql", web::post().to(graphql_post))
                .route(
                    "/graphql",
                    web::get().guard(live::is_upgrade()).to(live::upgrade),
                )
                .route("/graphql", web::get().to(graphql_get))
                .route("/graphiql", web::get().to(graphiql))
                .route("/health/live", web::get().to(live))
                .route("/health/ready", web::get().to(ready))
                .route("/metrics", web::get().to(metrics))
        })
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
        if !options.handle_signals {
            server = server.disable_signals().workers(2);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                addr: settings.bind.clone(),
                source,
            })?
            .run();

        let sweeper = options.sweep.then(|| {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let handle = tokio::spawn(expiry_sweep::run(
                db.clone(),
                policy,
                clock,
                Duration::from_secs(settings.sweep_interval_secs),
                stop_rx,
            ));
            (handle, stop_tx)
        });

        Ok(Self {
            port,
            server,
            db,
            sweeper,
            dev_tokens,
            events: (event_listener, events_stop),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The tokens to print when running without `CRM_JWT_SECRET`.
    pub fn dev_tokens(&self) -> Option<&DevTokens> {
        self.dev_tokens.as_ref()
    }

    /// Serve until stopped (SIGINT/SIGTERM: in-flight requests finish first),
    /// then stop the sweeper and close the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((handle, stop)) = self.sweeper {
            let _ = stop.send(true);
            let _ = handle.await;
        }
        let (listener, stop) = self.events;
        let _ = stop.send(true);
        if let Some(listener) = listener {
            let _ = listener.await;
        }
        let _ = self.db.close().await;
        result
    }
}

/// A request refused before GraphQL runs: HTTP status and the error.
type Refusal = (StatusCode, AppError);

fn authenticate(state: &AppState, req: &HttpRequest) -> Result<crate::auth::Principal, Refusal> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state
        .jwt
        .authenticate(header)
        .map_err(|e| (StatusCode::UNAUTHORIZED, e))
}

type Answer = Either<GraphQLResponse, HttpResponse>;

fn answer(result: Result<GraphQLResponse, Refusal>) -> Answer {
    match result {
        Ok(response) => Either::Left(response),
        Err(refusal) => Either::Right(refuse(refusal)),
    }
}

fn refuse((status, error): Refusal) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((WWW_AUTHENTICATE, "Bearer"));
    }
    response.json(error_body(&error))
}

async fn graphql_post(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Answer {
    answer(execute_post(&state, &req, &body).await)
}

async fn execute_post(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<GraphQLResponse, Refusal> {
    let principal = authenticate(state, req)?;
    let request: async_graphql::Request = serde_json::from_slice(body).map_err(|e| {
        let message = if body.first() == Some(&b'[') {
            "batched requests are not supported; send one operation per request".to_owned()
        } else {
            format!("the body is not a GraphQL request: {e}")
        };
        (
            StatusCode::BAD_REQUEST,
            AppError::bad_input("body", message),
        )
    })?;
    Ok(state.schema.execute(request.data(principal)).await.into())
}

/// GET runs queries only: a mutation over GET would be open to CSRF.
async fn graphql_get(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    answer(execute_get(&state, &req).await)
}

async fn execute_get(state: &AppState, req: &HttpRequest) -> Result<GraphQLResponse, Refusal> {
    let principal = authenticate(state, req)?;
    let request = async_graphql::http::parse_query_string(req.query_string()).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            AppError::bad_input("query", format!("cannot read the query string: {e}")),
        )
    })?;
    if let Ok(document) = async_graphql::parser::parse_query(&request.query)
        && document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Query)
    {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            AppError::bad_input("query", "mutations must be sent with POST"),
        ));
    }
    Ok(state.schema.execute(request.data(principal)).await.into())
}

async fn graphiql() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::html()).body(
        GraphiQLSource::build()
            .endpoint("/graphql")
            // GraphiQL passes its headers (`{"Authorization": "Bearer ..."}`)
            // as the `connection_init` payload.
            .subscription_endpoint("/graphql")
            .title("CRM — GraphiQL")
            .finish(),
    )
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => {
            HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "database": "up" }))
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check: database down");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "unavailable", "database": "down" }))
        }
    }
}

/// Prometheus scrape, ADMIN token required (the figures are the admins').
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let refusal = match authenticate(&state, &req) {
        Ok(principal) if principal.is_admin() => None,
        Ok(_) => Some((StatusCode::FORBIDDEN, AppError::Forbidden)),
        Err(refusal) => Some(refusal),
    };
    match refusal {
        Some(refusal) => refuse(refusal),
        None => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(crate::metrics::render()),
    }
}
