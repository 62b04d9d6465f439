//! Building and running the HTTP server: `Application::build`, `port`,
//! `run_until_stopped`.
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, ContentType, WWW_AUTHENTICATE};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_graphql::parser::types::OperationType;
use chrono::Duration as TokenTtl;
use sea_orm::DatabaseConnection;

use crate::auth::{JwtKeys, Role};
use crate::clock::SharedClock;
use crate::config::{Settings, redact_url};
use crate::error::AppError;
use crate::graphql::{self, ApiContext, CrmSchema, error_codes::error_body};
use crate::jobs::expiry_sweep;
use crate::store;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// A request body must arrive within this time (a client sending one byte a
/// second is cut off).
pub const BODY_READ_DEADLINE: Duration = Duration::from_secs(10);
/// The request line and headers must arrive within this time.
pub const HEADER_READ_DEADLINE: Duration = Duration::from_secs(5);
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
                    partner: jwt
                        .issue(Role::Partner, "dev-partner", DEV_TOKEN_TTL, now)
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
        let cors_origins = settings.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(crate::cors::layer(&cors_origins))
                .wrap(actix_web::middleware::from_fn(crate::cors::json_refusals))
                .wrap(actix_web::middleware::from_fn(crate::http_log::middleware))
                .app_data(state.clone())
                .service(
                    web::resource("/graphql")
                        .route(web::post().to(graphql_post))
                        .route(web::get().to(graphql_get))
                        .default_service(web::to(method_not_allowed)),
                )
                .configure(crate::graphiql::configure)
                .route("/health/live", web::get().to(live))
                .route("/health/ready", web::get().to(ready))
                .route("/metrics", web::get().to(metrics))
                .default_service(web::to(not_found))
        })
        .client_request_timeout(HEADER_READ_DEADLINE)
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
    let principal = state
        .jwt
        .authenticate(header)
        .map_err(|e| (StatusCode::UNAUTHORIZED, e))?;
    crate::http_log::note_role(req, principal.role);
    Ok(principal)
}

fn answer(result: Result<async_graphql::Response, Refusal>) -> HttpResponse {
    match result {
        Ok(response) => graphql_response(&response),
        Err(refusal) => refuse(refusal),
    }
}

fn refuse((status, error): Refusal) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((WWW_AUTHENTICATE, "Bearer"));
    }
    response.json(error_body(&error))
}

/// Serialize a GraphQL response, within [`MAX_RESPONSE_BYTES`]. A database
/// outage is a 503 so that clients and proxies retry.
fn graphql_response(response: &async_graphql::Response) -> HttpResponse {
    let body = match serde_json::to_vec(response) {
        Ok(body) if body.len() <= MAX_RESPONSE_BYTES => body,
        Ok(body) => {
            tracing::warn!(bytes = body.len(), "response over the size ceiling refused");
            return refuse((
                StatusCode::OK,
                AppError::ResponseTooLarge(MAX_RESPONSE_BYTES),
            ));
        }
        Err(error) => {
            return refuse((
                StatusCode::INTERNAL_SERVER_ERROR,
                AppError::Internal(format!("response serialization: {error}")),
            ));
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

/// Read the body within [`MAX_BODY_BYTES`] and [`BODY_READ_DEADLINE`].
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Bytes, Refusal> {
    use futures_util::StreamExt as _;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            AppError::PayloadTooLarge(MAX_BODY_BYTES),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    AppError::bad_input("body", format!("cannot read the request body: {e}")),
                )
            })?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(BODY_READ_DEADLINE, read)
        .await
        .map_err(|_| {
            (
                StatusCode::REQUEST_TIMEOUT,
                AppError::bad_input(
                    "body",
                    format!(
                        "the request body did not arrive within {} s",
                        BODY_READ_DEADLINE.as_secs()
                    ),
                ),
            )
        })?
}

async fn execute_post(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<async_graphql::Response, Refusal> {
    // The token is checked before the body is read: an anonymous client
    // cannot hold a connection open by sending slowly.
    let principal = authenticate(state, req)?;
    let body = read_body(req, payload).await?;
    let request: async_graphql::Request = serde_json::from_slice(&body).map_err(|e| {
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
    let request = async_graphql::http::parse_query_string(req.query_string()).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            AppError::bad_input("query", format!("cannot read the query string: {e}")),
        )
    })?;
    crate::http_log::note_operation(req, crate::http_log::operation_name(&request).as_deref());
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
    Ok(state.schema.execute(request.data(principal)).await)
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, "GET, POST"))
        .json(error_body(&AppError::MethodNotAllowed))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(error_body(&AppError::NotFound("page")))
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
        None => {
            crate::metrics::observe_pool(&state.db);
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4")
                .body(crate::metrics::render())
        }
    }
}
