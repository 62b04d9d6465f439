//! Building and running the HTTP server: `Application::build`, `port`,
//! `run_until_stopped`.
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::parser::types::OperationType;
use chrono::Duration as TokenTtl;
use sea_orm::DatabaseConnection;

use crate::auth::{JwtKeys, Role};
use crate::clock::SharedClock;
use crate::config::{Settings, redact_url};
use crate::error::AppError;
use crate::events::EventBus;
use crate::graphql::{self, ApiContext, CrmSchema};
use crate::http::refuse;
use crate::jobs::expiry_sweep;
use crate::live::{self, LiveState};
use crate::store;

pub use crate::http::{BODY_READ_DEADLINE, HEADER_READ_DEADLINE, MAX_BODY_BYTES};
/// Largest GraphQL response sent; a larger one is replaced by an error.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
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
    pub partner: String,
}

struct AppState {
    schema: CrmSchema,
    jwt: JwtKeys,
    db: DatabaseConnection,
    api: ApiContext,
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
    #[error("cannot load the revoked token subjects: {0}")]
    Partners(AppError),
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
        let (jwt, dev_tokens) = keys(&settings)?;
        let db = database(&settings).await?;
        let policy = settings.expiry_policy();
        let partners = crate::partners::PartnerControls::start(&db, settings.partner_rate())
            .await
            .map_err(StartupError::Partners)?;
        let api = ApiContext {
            db: db.clone(),
            policy: Arc::new(policy.clone()),
            clock: clock.clone(),
            partners,
        };
        let schema = graphql::build_schema(api.clone());
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
            db.clone(),
            live::LiveTimeouts::from(&settings),
            going_away_rx,
        ));
        let state = web::Data::new(AppState {
            schema,
            jwt,
            db: db.clone(),
            api,
        });
        let (server, port) = http_server(&settings, &options, state, live_state)?;
        let sweeper = options
            .sweep
            .then(|| start_sweeper(&settings, db.clone(), policy, clock));
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

/// The signing keys: from the configured secret, or a random one with
/// printed development tokens when none is set.
fn keys(settings: &Settings) -> Result<(JwtKeys, Option<DevTokens>), StartupError> {
    let Some(secret) = &settings.jwt_secret else {
        return dev_keys(settings);
    };
    crate::auth::check_secret(secret).map_err(StartupError::WeakSecret)?;
    let jwt = JwtKeys::hs256(
        secret.as_bytes(),
        &settings.jwt_issuer,
        &settings.jwt_audience,
    );
    Ok((jwt, None))
}

fn dev_keys(settings: &Settings) -> Result<(JwtKeys, Option<DevTokens>), StartupError> {
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
    let issue = |role, sub| {
        jwt.issue(role, sub, DEV_TOKEN_TTL, now)
            .map_err(StartupError::Tokens)
    };
    let tokens = DevTokens {
        admin: issue(Role::Admin, "dev-admin")?,
        agent: issue(Role::Agent, "dev-agent")?,
        partner: issue(Role::Partner, "dev-partner")?,
    };
    Ok((jwt, Some(tokens)))
}

/// The pool, migrated.
async fn database(settings: &Settings) -> Result<DatabaseConnection, StartupError> {
    let db = store::connect(&settings.database_url)
        .await
        .map_err(|source| StartupError::Database {
            url: redact_url(&settings.database_url),
            source,
        })?;
    store::migrate(&db).await.map_err(StartupError::Migration)?;
    Ok(db)
}

/// Bind the listener and start serving the routes; returns the server and
/// its port.
fn http_server(
    settings: &Settings,
    options: &RunOptions,
    state: web::Data<AppState>,
    live_state: web::Data<LiveState>,
) -> Result<(Server, u16), StartupError> {
    let bind_error = |source| StartupError::Bind {
        addr: settings.bind.clone(),
        source,
    };
    let listener = TcpListener::bind(&settings.bind).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let cors_origins = settings.cors_origins.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(crate::cors::layer(&cors_origins))
            .wrap(actix_web::middleware::from_fn(crate::cors::json_refusals))
            .wrap(actix_web::middleware::from_fn(crate::http_log::middleware))
            .app_data(state.clone())
            .app_data(live_state.clone())
            .configure(routes)
    })
    .client_request_timeout(HEADER_READ_DEADLINE)
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
    if !options.handle_signals {
        server = server.disable_signals().workers(2);
    }
    let server = server.listen(listener).map_err(bind_error)?.run();
    Ok((server, port))
}

fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/graphql")
                .route(web::get().guard(live::is_upgrade()).to(live::upgrade))
                .route(web::post().to(graphql_post))
                .route(web::get().to(graphql_get))
                .default_service(web::to(method_not_allowed)),
        )
        .configure(crate::graphiql::configure)
        .route("/leads/adf", web::post().to(leads_adf))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(not_found));
}

/// The expiry sweep on its interval, and the sender that stops it.
fn start_sweeper(
    settings: &Settings,
    db: DatabaseConnection,
    policy: crate::domain::expiry::ExpiryPolicy,
    clock: SharedClock,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::watch::Sender<bool>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(expiry_sweep::run(
        db,
        policy,
        clock,
        Duration::from_secs(settings.sweep_interval_secs),
        stop_rx,
    ));
    (handle, stop_tx)
}

/// A request refused before GraphQL runs; its HTTP status comes from
/// [`crate::http::status_of`].
type Refusal = AppError;

fn authenticate(state: &AppState, req: &HttpRequest) -> Result<crate::auth::Principal, Refusal> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = state.jwt.authenticate(header)?;
    state.api.partners.refuse_revoked(&principal)?;
    crate::http_log::note_role(req, principal.role);
    Ok(principal)
}

/// `POST /leads/adf` (see [`crate::http::adf`]).
async fn leads_adf(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    match authenticate(&state, &req) {
        Ok(principal) => crate::http::adf::receive(&state.api, &principal, &req, payload).await,
        Err(refusal) => refuse(&refusal),
    }
}

fn answer(result: Result<async_graphql::Response, Refusal>) -> HttpResponse {
    match result {
        Ok(response) => graphql_response(&response),
        Err(refusal) => refuse(&refusal),
    }
}

/// Serialize a GraphQL response, within [`MAX_RESPONSE_BYTES`]. A database
/// outage is a 503 so that clients and proxies retry.
fn graphql_response(response: &async_graphql::Response) -> HttpResponse {
    let body = match serde_json::to_vec(response) {
        Ok(body) if body.len() <= MAX_RESPONSE_BYTES => body,
        Ok(body) => {
            tracing::warn!(bytes = body.len(), "response over the size ceiling refused");
            return refuse(&AppError::ResponseTooLarge(MAX_RESPONSE_BYTES));
        }
        Err(error) => {
            return refuse(&AppError::Internal(format!(
                "response serialization: {error}"
            )));
        }
    };
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|code| *code == async_graphql::Value::from("UNAVAILABLE"))
    });
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(body)
}

async fn graphql_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    answer(execute_post(&state, &req, payload).await)
}

async fn execute_post(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<async_graphql::Response, Refusal> {
    // The token is checked before the body is read: an anonymous client
    // cannot hold a connection open by sending slowly.
    let principal = authenticate(state, req)?;
    let body = crate::http::read_body(req, payload).await?;
    let request: async_graphql::Request = serde_json::from_slice(&body).map_err(|e| {
        let message = if body.first() == Some(&b'[') {
            "batched requests are not supported; send one operation per request".to_owned()
        } else {
            format!("the body is not a GraphQL request: {e}")
        };
        AppError::bad_input("body", message)
    })?;
    crate::http_log::note_operation(req, crate::http_log::operation_name(&request).as_deref());
    Ok(state.schema.execute(request.data(principal)).await)
}

/// GET runs queries only: a mutation over GET would be open to CSRF.
async fn graphql_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    answer(execute_get(&state, &req).await)
}

async fn execute_get(
    state: &AppState,
    req: &HttpRequest,
) -> Result<async_graphql::Response, Refusal> {
    let principal = authenticate(state, req)?;
    let request = async_graphql::http::parse_query_string(req.query_string())
        .map_err(|e| AppError::bad_input("query", format!("cannot read the query string: {e}")))?;
    crate::http_log::note_operation(req, crate::http_log::operation_name(&request).as_deref());
    if let Ok(document) = async_graphql::parser::parse_query(&request.query)
        && document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Query)
    {
        return Err(AppError::MethodNotAllowed(
            "query: mutations must be sent with POST".into(),
        ));
    }
    Ok(state.schema.execute(request.data(principal)).await)
}

async fn method_not_allowed() -> HttpResponse {
    refuse(&AppError::MethodNotAllowed(
        "method not allowed: use GET or POST".into(),
    ))
}

async fn not_found() -> HttpResponse {
    refuse(&AppError::NotFound("page"))
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
        Ok(_) => Some(AppError::Forbidden),
        Err(refusal) => Some(refusal),
    };
    match refusal {
        Some(refusal) => refuse(&refusal),
        None => {
            crate::metrics::observe_pool(&state.db);
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4")
                .body(crate::metrics::render())
        }
    }
}
