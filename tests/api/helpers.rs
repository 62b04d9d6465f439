use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm::auth::{JwtKeys, Role};
use crm::clock::ManualClock;
use crm::config::Settings;
use crm::startup::{Application, RunOptions};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::crm_process::Crm;

pub const SECRET: &str = "integration-test-secret-at-least-32-bytes";
pub const ISSUER: &str = "crm";
pub const AUDIENCE: &str = "crm-api";

/// Where every test's clock starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// A database made for one test and dropped after it.
pub enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    pub async fn create() -> Self {
        match std::env::var("DATABASE_URL") {
            Ok(admin_url) if admin_url.starts_with("postgres") => {
                let name = format!("crm_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("PostgreSQL from DATABASE_URL must be reachable");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                let url = format!("{base}/{name}");
                Self::Postgres {
                    admin_url,
                    name,
                    url,
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("crm.sqlite").display()
                );
                Self::Sqlite { _dir: dir, url }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// The PostgreSQL server's maintenance URL and this database's name.
    pub fn postgres_admin(&self) -> Option<(&str, &str)> {
        match self {
            Self::Postgres {
                admin_url, name, ..
            } => Some((admin_url, name)),
            Self::Sqlite { .. } => None,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
        {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Async drop: a runtime of its own on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = Database::connect(&admin_url).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub db: DatabaseConnection,
    pub keys: JwtKeys,
    pub database: Arc<TestDatabase>,
}

pub fn settings_for(url: &str) -> Settings {
    let mut settings = Settings::with_database(url);
    settings.jwt_secret = Some(SECRET.into());
    settings
}

/// The server on port 0 against a fresh database, clock at [`t0`].
pub async fn spawn_app() -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    spawn_app_on(database, ManualClock::new(t0())).await
}

/// Another server instance on the same database (and clock).
pub async fn spawn_app_on(database: Arc<TestDatabase>, clock: ManualClock) -> TestApp {
    spawn_app_with(database, clock, None).await
}

/// An instance on `database`; with `sweep_every` (seconds), it runs its
/// background sweep at start and at that interval.
pub async fn spawn_app_with(
    database: Arc<TestDatabase>,
    clock: ManualClock,
    sweep_every: Option<u64>,
) -> TestApp {
    let mut settings = settings_for(database.url());
    if let Some(seconds) = sweep_every {
        settings.sweep_interval_secs = seconds;
    }
    spawn_app_with_settings(database, clock, settings, sweep_every.is_some()).await
}

/// The server on a fresh database with `edit` applied to the test settings.
pub async fn spawn_app_configured(edit: impl FnOnce(&mut Settings)) -> TestApp {
    let database = Arc::new(TestDatabase::create().await);
    let mut settings = settings_for(database.url());
    edit(&mut settings);
    spawn_app_with_settings(database, ManualClock::new(t0()), settings, false).await
}

/// An instance on `database` with these settings.
pub async fn spawn_app_with_settings(
    database: Arc<TestDatabase>,
    clock: ManualClock,
    settings: Settings,
    sweep: bool,
) -> TestApp {
    let app = Application::build(
        settings,
        Arc::new(clock.clone()),
        RunOptions {
            sweep,
            handle_signals: false,
        },
    )
    .await
    .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        clock,
        db,
        keys: JwtKeys::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE),
        database,
    }
}

/// The node ids of a connection (`{ edges { node { id } } }`), in order.
pub fn node_ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges in {connection}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("a node id").to_owned())
        .collect()
}

/// The expiry sweep with the default policy, `days` after [`t0`].
pub async fn sweep_on_day(app: &TestApp, days: i64) -> crm::store::expiry::SweepReport {
    crm::jobs::expiry_sweep::sweep_once(
        &app.db,
        &crm::domain::expiry::ExpiryPolicy::default(),
        t0() + chrono::Duration::days(days),
    )
    .await
    .expect("sweep")
}

/// The value of the sample `series` (`name` or `name{labels}`, as printed)
/// in a Prometheus exposition, if present.
pub fn metric_sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// A reading of `/metrics`, a series at a time.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of `series`; a series missing from the page fails the test.
    pub fn get(&self, series: &str) -> f64 {
        metric_sample(&self.0, series).unwrap_or_else(|| panic!("no {series} in:\n{}", self.0))
    }
}

impl TestApp {
    /// `/metrics` now (see [`Metrics`]).
    pub async fn read_metrics(&self) -> Metrics {
        Metrics(self.metrics().await)
    }

    /// `GET /metrics` as an admin: the exposition text.
    pub async fn metrics(&self) -> String {
        self.get_as("/metrics", Role::Admin)
            .await
            .text()
            .await
            .unwrap()
    }

    pub fn token_for(&self, role: Role, sub: &str) -> String {
        self.keys
            .issue(role, sub, Duration::hours(1), Utc::now())
            .expect("token")
    }

    pub fn token(&self, role: Role) -> String {
        let sub = match role {
            Role::Admin => "admin-1",
            Role::Agent => "agent-1",
            Role::Partner => "partner-1",
        };
        self.token_for(role, sub)
    }

    /// POST a GraphQL request with a raw Authorization header (or none).
    pub async fn post_raw(&self, body: Value, authorization: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&body);
        if let Some(auth) = authorization {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// POST a GraphQL request as `role`; returns the whole JSON response.
    pub async fn post_graphql(&self, query: &str, variables: Value, role: Role) -> Value {
        self.post_as(query, variables, &self.token(role)).await
    }

    pub async fn post_as(&self, query: &str, variables: Value, token: &str) -> Value {
        let (status, body) = self
            .post_raw(
                json!({ "query": query, "variables": variables }),
                Some(&format!("Bearer {token}")),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Like [`post_graphql`], asserting there is no error; returns `data`.
    pub async fn data(&self, query: &str, variables: Value, role: Role) -> Value {
        let body = self.post_graphql(query, variables, role).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// [`post_graphql`] of a document without variables.
    pub async fn post_query(&self, query: &str, role: Role) -> Value {
        self.post_graphql(query, json!({}), role).await
    }

    /// [`data`] of a document without variables.
    pub async fn query_data(&self, query: &str, role: Role) -> Value {
        self.data(query, json!({}), role).await
    }

    /// The names of `type_name`'s `members` (`fields`, `inputFields` or
    /// `enumValues`) in `role`'s introspection, in order.
    pub async fn introspected_names(
        &self,
        type_name: &str,
        members: &str,
        role: Role,
    ) -> Vec<String> {
        let query = format!(r#"{{ __type(name: "{type_name}") {{ {members} {{ name }} }} }}"#);
        let data = self.query_data(&query, role).await;
        data["__type"][members]
            .as_array()
            .unwrap_or_else(|| panic!("no {members} in {data}"))
            .iter()
            .map(|m| m["name"].as_str().expect("a name").to_owned())
            .collect()
    }

    /// `data` of `{ opportunity(id) { <fields> } }` as `role`.
    pub async fn query_opportunity(&self, id: &str, fields: &str, role: Role) -> Value {
        let query = format!(r#"query($id: ID!) {{ opportunity(id: $id) {{ {fields} }} }}"#);
        self.data(&query, json!({ "id": id }), role).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path` with `role`'s token.
    pub async fn get_as(&self, path: &str, role: Role) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .bearer_auth(self.token(role))
            .send()
            .await
            .expect("request sent")
    }

    /// `body` is refused with `code`, and `table` still holds `rows` rows:
    /// bad input changes nothing.
    pub async fn assert_refused(&self, body: &Value, code: &str, table: &str, rows: i64) {
        assert_eq!(error_code(body), code, "{body}");
        assert_eq!(
            self.count(table).await,
            rows,
            "rows in {table} after {body}"
        );
    }

    pub async fn count(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    }
}

/// The schema with its validation wall (admin-only fields invisible to
/// others) taken down, on `app`'s database and clock: what the resolver
/// guards refuse on their own.
pub async fn schema_without_admin_wall(app: &TestApp) -> crm::graphql::CrmSchema {
    crm::graphql::build_schema_without_admin_wall(crm::graphql::ApiContext {
        db: app.db.clone(),
        policy: Arc::new(crm::domain::expiry::ExpiryPolicy::default()),
        clock: Arc::new(app.clock.clone()),
        partners: crm::partners::PartnerControls::start(&app.db, std::num::NonZeroU32::MIN)
            .await
            .unwrap(),
        bus: crm::events::EventBus::default(),
    })
}

/// `query` executed on `schema` (no HTTP, no token) for `sub` as `role`;
/// the JSON response.
pub async fn execute_as(
    schema: &crm::graphql::CrmSchema,
    query: impl Into<String>,
    sub: &str,
    role: Role,
) -> Value {
    let request = async_graphql::Request::new(query).data(crm::auth::Principal {
        sub: sub.into(),
        role,
        issued_at: 0,
        expires_at: i64::MAX,
    });
    serde_json::to_value(schema.execute(request).await).unwrap()
}

/// Asserts that each field of the object `expected` has the same value in
/// `actual` (other fields of `actual` are not looked at).
pub fn assert_fields(actual: &Value, expected: Value) {
    for (field, value) in expected.as_object().expect("an object of expected fields") {
        assert_eq!(&actual[field], value, "{field} in {actual}");
    }
}

/// The first error's `extensions.code`.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

/// The first error's `message` (empty if there is none).
pub fn error_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

pub const SUBMIT_LEAD: &str = r#"
mutation Submit($input: SubmitLeadInput!) {
  submitLead(input: $input) {
    outcome
    warnings { field message }
    lead { id email phone submittedPhone }
    opportunity { id status }
  }
}"#;

/// `submitLead` as a partner may ask it: what its lead became in the CRM is
/// not the partner's to know (SPEC 3).
pub const PARTNER_SUBMIT_LEAD: &str = r#"
mutation Submit($input: SubmitLeadInput!) {
  submitLead(input: $input) { lead { id receivedAt } warnings { field message } }
}"#;

/// Submit a lead as an agent and return `data.submitLead`, asserting success.
pub async fn submit_lead(app: &TestApp, input: Value) -> Value {
    app.data(SUBMIT_LEAD, json!({ "input": input }), Role::Agent)
        .await["submitLead"]
        .clone()
}

/// A real `crm serve` process on `database`, killed when dropped.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub app: TestApp,
}

impl ServerProcess {
    pub async fn start(database: Arc<TestDatabase>) -> Self {
        Self::start_with(database, &[]).await
    }

    /// Send `signal` (`"TERM"`, `"KILL"`) to the process, asserting `kill`
    /// delivered it.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Like [`start`](Self::start) with extra environment variables.
    pub async fn start_with(database: Arc<TestDatabase>, env: &[(&str, &str)]) -> Self {
        let server = Crm::new()
            .envs(env)
            .database(database.url())
            .env("CRM_JWT_SECRET", SECRET)
            .env("CRM_SWEEP_INTERVAL_SECS", "3600")
            .serve()
            .await;
        let db = crm::store::connect(database.url())
            .await
            .expect("test connection");
        let app = TestApp {
            address: server.base,
            client: reqwest::Client::new(),
            clock: ManualClock::new(Utc::now()),
            db,
            keys: JwtKeys::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE),
            database,
        };
        Self {
            child: server.child,
            app,
        }
    }
}

/// Send every input to `submitLead` at once, as an agent, spread over
/// `apps` in turn; returns the `submitLead` payloads, asserting no errors.
pub async fn submit_concurrently(apps: &[&TestApp], inputs: Vec<Value>) -> Vec<Value> {
    let mut tasks = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let app = apps[i % apps.len()];
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(app.token(Role::Agent))
            .json(&json!({ "query": SUBMIT_LEAD, "variables": { "input": input } }));
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()
        }));
    }
    let mut payloads = Vec::new();
    for task in tasks {
        let body = task.await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        payloads.push(body["data"]["submitLead"].clone());
    }
    payloads
}

/// Set an opportunity's status through the API.
pub async fn set_status(app: &TestApp, id: &str, status: &str, role: Role) {
    app.data(
        r#"mutation($id: ID!, $s: OpportunityStatus!) { updateOpportunityStatus(id: $id, status: $s) { id } }"#,
        json!({ "id": id, "s": status }),
        role,
    )
    .await;
}

/// The answer of `POST /leads/adf`: status, `Retry-After`, JSON body.
pub struct AdfAnswer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl TestApp {
    /// POST an ADF document with this content type and token (or none).
    pub async fn post_adf_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: &str,
        token: Option<&str>,
    ) -> AdfAnswer {
        let mut request = self
            .client
            .post(format!("{}/leads/adf", self.address))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.expect("JSON body");
        AdfAnswer {
            status,
            retry_after,
            body,
        }
    }

    /// POST an ADF document as `application/xml` with `role`'s token.
    pub async fn post_adf(&self, xml: &str, role: Role) -> AdfAnswer {
        self.post_adf_raw(xml.to_owned(), "application/xml", Some(&self.token(role)))
            .await
    }
}

/// A checked-in ADF fixture (`tests/fixtures/adf/<name>`).
pub fn adf_fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/adf")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
