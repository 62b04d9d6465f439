//! Quebec's Law 25: portability export and anonymization, looked for in the
//! database itself.
use chrono::Duration;
use crm::auth::Role;
use crm::clock::Clock;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, spawn_app, submit_lead};

const EXPORT: &str = "query($id: ID!) { exportClientData(clientId: $id) }";
const ANONYMIZE: &str = "mutation($id: ID!) { anonymizeClient(clientId: $id) { id } }";

/// Agents and partners asking for `operation` on `client` get `FORBIDDEN`.
async fn refused_to_non_admins(app: &TestApp, operation: &str, client: &str) {
    for role in [Role::Agent, Role::Partner] {
        let body = app
            .post_graphql(operation, json!({ "id": client }), role)
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{role:?}: {body}");
    }
}

/// Every row of every table, as text.
async fn every_row(app: &TestApp) -> Vec<String> {
    let backend = app.db.get_database_backend();
    let postgres = matches!(backend, sea_orm::DbBackend::Postgres);
    let tables_sql = if postgres {
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    };
    let tables: Vec<String> = app
        .db
        .query_all_raw(Statement::from_string(backend, tables_sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    assert!(tables.iter().any(|t| t == "lead"), "{tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let sql = if postgres {
            format!("SELECT row_to_json(t)::text AS row FROM \"{table}\" t")
        } else {
            let columns: Vec<String> = app
                .db
                .query_all_raw(Statement::from_string(
                    backend,
                    format!("SELECT name FROM pragma_table_info('{table}')"),
                ))
                .await
                .unwrap()
                .iter()
                .map(|r| format!("quote(\"{}\")", r.try_get::<String>("", "name").unwrap()))
                .collect();
            format!(
                "SELECT {} AS row FROM \"{table}\"",
                columns.join(" || '|' || ")
            )
        };
        for row in app
            .db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
        {
            rows.push(format!(
                "{table}: {}",
                row.try_get::<String>("", "row").unwrap()
            ));
        }
    }
    rows
}

const PERSON: &[&str] = &[
    "Zoltan",
    "Quaxley",
    "zoltan.quaxley@example.com",
    "Zoltan.Quaxley@Example.COM",
    "+15145550142",
    "(514) 555-0142",
    "5145550142",
    "secret message about a trade-in",
    "zq.second@example.com",
];

/// A person with two leads (one from a partner with an odd phone), a
/// status change, and a conflict recorded on someone else's lead.
async fn a_person(app: &TestApp) -> (String, String) {
    let first = submit_lead(
        app,
        json!({ "firstName": "Zoltan", "lastName": "Quaxley", "email": "Zoltan.Quaxley@Example.COM",
                "phone": "(514) 555-0142", "message": "secret message about a trade-in" }),
    )
    .await;
    submit_lead(
        app,
        json!({ "email": "zoltan.quaxley@example.com", "phone": "555-01" }),
    )
    .await;
    // Someone else, then their lead sent with Zoltan's phone: a conflict
    // naming him is recorded on their lead.
    submit_lead(
        app,
        json!({ "email": "other.person@example.com", "firstName": "Other" }),
    )
    .await;
    submit_lead(
        app,
        json!({ "email": "other.person@example.com", "phone": "514 555 0142" }),
    )
    .await;
    let opportunity = first["opportunity"]["id"].as_str().unwrap().to_owned();
    app.data(
        r#"mutation($id: ID!) { updateOpportunityStatus(id: $id, status: PRIS_EN_CHARGE) { id } }"#,
        json!({ "id": opportunity }),
        Role::Agent,
    )
    .await;
    let client = app
        .data(
            r#"query($id: ID!) { opportunity(id: $id) { client { id } } }"#,
            json!({ "id": opportunity }),
            Role::Agent,
        )
        .await["opportunity"]["client"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (client, opportunity)
}

#[tokio::test]
async fn an_export_holds_what_the_api_shows_of_the_person_and_is_recorded() {
    let app = spawn_app().await;
    let (client, _) = a_person(&app).await;
    let export =
        app.data(EXPORT, json!({ "id": client }), Role::Admin).await["exportClientData"].clone();
    let shown = app
        .data(
            r#"query($id: ID!) { client(id: $id) { id firstName lastName emails phones
                 opportunities(first: 10) { edges { node { id status
                   statusHistory { from to changedBy }
                   leads(first: 10) { edges { node { id submittedEmail submittedPhone message } } } } } } } }"#,
            json!({ "id": client }),
            Role::Admin,
        )
        .await["client"]
        .clone();
    assert_eq!(export["client"]["id"], shown["id"]);
    assert_eq!(export["client"]["firstName"], "Zoltan");
    let points: Vec<&Value> = export["contactPoints"].as_array().unwrap().iter().collect();
    let values: Vec<&str> = points
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    for email in shown["emails"].as_array().unwrap() {
        assert!(values.contains(&email.as_str().unwrap()), "{values:?}");
    }
    for phone in shown["phones"].as_array().unwrap() {
        assert!(values.contains(&phone.as_str().unwrap()), "{values:?}");
    }
    assert_eq!(points.len(), 2);
    let opportunities = shown["opportunities"]["edges"].as_array().unwrap();
    assert_eq!(
        export["opportunities"].as_array().unwrap().len(),
        opportunities.len()
    );
    let node = &opportunities[0]["node"];
    let exported = &export["opportunities"][0];
    assert_eq!(exported["id"], node["id"]);
    assert_eq!(exported["status"], node["status"]);
    assert_eq!(
        exported["statusHistory"].as_array().unwrap().len(),
        node["statusHistory"].as_array().unwrap().len()
    );
    let leads = node["leads"]["edges"].as_array().unwrap();
    assert_eq!(export["leads"].as_array().unwrap().len(), leads.len());
    for (lead, edge) in export["leads"].as_array().unwrap().iter().zip(leads) {
        assert_eq!(lead["id"], edge["node"]["id"]);
        assert_eq!(lead["submittedEmail"], edge["node"]["submittedEmail"]);
        assert_eq!(lead["submittedPhone"], edge["node"]["submittedPhone"]);
        assert_eq!(lead["message"], edge["node"]["message"]);
    }
    assert_eq!(app.count("privacy_event").await, 1);
    refused_to_non_admins(&app, EXPORT, &client).await;
    assert_eq!(app.count("privacy_event").await, 1);
}

#[tokio::test]
async fn anonymization_erases_the_person_everywhere_and_keeps_ids_statuses_dates_and_expiree() {
    let app = spawn_app().await;
    // An older opportunity of his, expired by the rule.
    let old = submit_lead(
        &app,
        json!({ "email": "zq.second@example.com", "phone": "514-555-0142", "firstName": "Zoltan" }),
    )
    .await;
    let old_id = old["opportunity"]["id"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::days(57));
    crm::store::expiry::sweep_once(
        &app.db,
        &crm::domain::expiry::ExpiryPolicy::default(),
        app.clock.now(),
    )
    .await
    .unwrap();
    let (client, opportunity) = a_person(&app).await;
    let before = every_row(&app).await;
    assert!(
        before.iter().any(|r| r.contains("Quaxley")),
        "the fixture holds the name"
    );

    for _ in 0..2 {
        // A second call is harmless.
        let data = app
            .data(
                "mutation($id: ID!) { anonymizeClient(clientId: $id) { id firstName lastName emails phones } }",
                json!({ "id": client }),
                Role::Admin,
            )
            .await;
        assert_eq!(
            data["anonymizeClient"],
            json!({ "id": client, "firstName": null, "lastName": null, "emails": [], "phones": [] })
        );
    }
    let after = every_row(&app).await;
    for value in PERSON {
        let left: Vec<&String> = after.iter().filter(|r| r.contains(value)).collect();
        assert!(
            left.is_empty(),
            "{value:?} is still in the database: {left:#?}"
        );
    }
    // The structure stays: same opportunities, statuses, expiree.
    let kept = app
        .query_opportunity(
            &opportunity,
            "status client { id } leads { totalCount }",
            Role::Admin,
        )
        .await;
    assert_eq!(kept["opportunity"]["status"], "PRIS_EN_CHARGE");
    assert_eq!(kept["opportunity"]["client"]["id"], client);
    assert_eq!(kept["opportunity"]["leads"]["totalCount"], 2);
    let expired = app
        .query_opportunity(&old_id, "expiree expiredAt", Role::Admin)
        .await;
    assert_eq!(expired["opportunity"]["expiree"], true);
    // The sticky trigger still holds.
    let cleared = app
        .db
        .execute_unprepared("UPDATE opportunity SET expiree = FALSE, expired_at = NULL")
        .await;
    assert!(cleared.is_err(), "the database let expiree be cleared");
    assert_eq!(app.count("privacy_event").await, 2);

    // A later lead with the old email makes a new client.
    let again = submit_lead(&app, json!({ "email": "Zoltan.Quaxley@Example.COM" })).await;
    assert_eq!(again["outcome"], "NEW_OPPORTUNITY");
    let new_client = app
        .query_opportunity(
            again["opportunity"]["id"].as_str().unwrap(),
            "client { id }",
            Role::Agent,
        )
        .await;
    assert_ne!(new_client["opportunity"]["client"]["id"], client);

    refused_to_non_admins(&app, ANONYMIZE, &client).await;
}

#[tokio::test]
async fn every_read_of_a_credit_request_is_logged_before_it_is_returned() {
    let app = spawn_app().await;
    let (lead_id, opportunity) = crate::crm_support::lead(
        &app,
        json!({ "email": "credit@example.com", "type": "CRE" }),
    )
    .await;
    let request = crate::crm_support::credit_request(&app, &opportunity, "32500.00").await;
    let client = app
        .query_opportunity(&opportunity, "client { id }", Role::Agent)
        .await["opportunity"]["client"]["id"]
        .clone();
    // Creating is not reading.
    assert_eq!(app.count("credit_request_access").await, 0);

    let one = app
        .data(
            "query($id: ID!) { creditRequest(id: $id) { id amount } }",
            json!({ "id": request }),
            Role::Agent,
        )
        .await;
    assert_eq!(one["creditRequest"]["amount"], "32500.00");
    let list = app
        .query_data(
            "{ creditRequests(first: 10) { edges { node { id } } } }",
            Role::Admin,
        )
        .await;
    assert_eq!(list["creditRequests"]["edges"].as_array().unwrap().len(), 2);
    app.data(
        "query($id: ID!) { lead(id: $id) { creditRequest { id } } }",
        json!({ "id": lead_id }),
        Role::Agent,
    )
    .await;
    app.data(
        "query($id: ID!) { client(id: $id) { openFiles { ... on CreditRequest { id } } } }",
        json!({ "id": client }),
        Role::Agent,
    )
    .await;
    // 1 single + 2 in the list + 1 through the lead + 2 in the open files.
    assert_eq!(app.count("credit_request_access").await, 6);

    let log = app
        .data(
            r#"query($id: ID) { creditRequestAccessLog(first: 10, creditRequestId: $id) {
                 totalCount edges { node { creditRequestId principal role via at } } } }"#,
            json!({ "id": request }),
            Role::Admin,
        )
        .await["creditRequestAccessLog"]
        .clone();
    assert_eq!(log["totalCount"], 3);
    let vias: Vec<&str> = log["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["via"].as_str().unwrap())
        .collect();
    assert_eq!(vias, ["OPEN_FILES", "LIST", "SINGLE"], "newest first");
    assert_eq!(log["edges"][2]["node"]["principal"], "agent-1");
    assert_eq!(log["edges"][2]["node"]["role"], "AGENT");
    let by_admin = app
        .query_data(
            r#"{ creditRequestAccessLog(principal: "admin-1") { totalCount } }"#,
            Role::Admin,
        )
        .await;
    assert_eq!(by_admin["creditRequestAccessLog"]["totalCount"], 2);
    for role in [Role::Agent, Role::Partner] {
        let body = app
            .post_query("{ creditRequestAccessLog { totalCount } }", role)
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }

    // No unlogged read: when the log cannot be written, the read fails.
    app.db
        .execute_unprepared("DROP TABLE credit_request_access")
        .await
        .unwrap();
    let body = app
        .post_graphql(
            "query($id: ID!) { creditRequest(id: $id) { id amount } }",
            json!({ "id": request }),
            Role::Agent,
        )
        .await;
    assert_eq!(body["data"]["creditRequest"], Value::Null, "{body}");
    assert!(body["errors"].is_array(), "{body}");
    assert!(!body.to_string().contains("32500"), "{body}");
}
