use crm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, error_message, spawn_app};

const CREATE_CLIENT: &str = r#"
mutation($input: CreateClientInput!) { createClient(input: $input) { id emails phones } }"#;

async fn create_client(app: &TestApp, email: &str) -> String {
    let data = app
        .data(
            CREATE_CLIENT,
            json!({ "input": { "firstName": "Luc", "email": email } }),
            Role::Agent,
        )
        .await;
    data["createClient"]["id"].as_str().unwrap().to_owned()
}

async fn create_opportunity(app: &TestApp, client_id: &str) -> Value {
    app.data(
        r#"mutation($c: ID!) { createOpportunity(input: { clientId: $c }) { id status createdAt } }"#,
        json!({ "c": client_id }),
        Role::Agent,
    )
    .await["createOpportunity"]
        .clone()
}

#[tokio::test]
async fn an_agent_opens_an_opportunity_for_a_walk_in_client() {
    let app = spawn_app().await;
    let client = create_client(&app, " Luc@Example.com ").await;
    let opportunity = create_opportunity(&app, &client).await;
    assert_eq!(opportunity["status"], "NOUVEAU");
    let data = app
        .data(
            r#"query($id: ID!) { client(id: $id) { emails opportunities { edges { node { id } } } } }"#,
            json!({ "id": client }),
            Role::Agent,
        )
        .await;
    assert_eq!(data["client"]["emails"], json!(["luc@example.com"]));
    assert_eq!(
        data["client"]["opportunities"]["edges"][0]["node"]["id"],
        opportunity["id"]
    );
}

#[tokio::test]
async fn a_contact_point_belongs_to_one_client_only() {
    let app = spawn_app().await;
    create_client(&app, "luc@example.com").await;
    let body = app
        .post_graphql(
            CREATE_CLIENT,
            json!({ "input": { "email": "LUC@example.com" } }),
            Role::Agent,
        )
        .await;
    app.assert_refused(&body, "CONFLICT", "client", 1).await;
}

#[tokio::test]
async fn every_status_change_is_recorded_with_who_and_when() {
    let app = spawn_app().await;
    let client = create_client(&app, "a@example.com").await;
    let id = create_opportunity(&app, &client).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = r#"mutation($id: ID!, $s: OpportunityStatus!) {
        updateOpportunityStatus(id: $id, status: $s) { status } }"#;
    app.data(
        update,
        json!({ "id": id, "s": "PRIS_EN_CHARGE" }),
        Role::Agent,
    )
    .await;
    app.data(
        update,
        json!({ "id": id, "s": "VENDU_NON_LIVRE" }),
        Role::Admin,
    )
    .await;
    let data = app
        .query_opportunity(
            &id,
            "status statusHistory { from to changedBy changedAt }",
            Role::Agent,
        )
        .await;
    let history = data["opportunity"]["statusHistory"]
        .as_array()
        .unwrap()
        .clone();
    let steps: Vec<_> = history
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone(), h["changedBy"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, json!("NOUVEAU"), json!("agent-1")),
            (json!("NOUVEAU"), json!("PRIS_EN_CHARGE"), json!("agent-1")),
            (
                json!("PRIS_EN_CHARGE"),
                json!("VENDU_NON_LIVRE"),
                json!("admin-1")
            ),
        ]
    );
    assert_eq!(data["opportunity"]["status"], "VENDU_NON_LIVRE");
}

#[tokio::test]
async fn an_unknown_opportunity_is_not_found_and_a_bad_id_is_bad_input() {
    let app = spawn_app().await;
    let body = app
        .post_query(
            r#"mutation { updateOpportunityStatus(id: "0190c7e0-0000-7000-8000-000000000000", status: PERDU) { id } }"#,
            Role::Agent,
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let body = app
        .post_query(r#"{ opportunity(id: "not-a-uuid") { id } }"#, Role::Agent)
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");
}

#[tokio::test]
async fn opportunities_page_by_cursor_with_a_total_count() {
    let app = spawn_app().await;
    let client = create_client(&app, "p@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            create_opportunity(&app, &client).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        app.clock.advance(chrono::Duration::minutes(1));
    }
    let page = r#"query($after: String) {
        opportunities(first: 2, after: $after, orderBy: { field: CREATED_AT, direction: ASC }) {
          totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }"#;
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(page, json!({ "after": after }), Role::Agent).await;
        let conn = &data["opportunities"];
        assert_eq!(conn["totalCount"], 5);
        for edge in conn["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ids);
    let newest = app
        .query_data(
            "{ opportunities(first: 1) { edges { node { id } } } }",
            Role::Agent,
        )
        .await;
    assert_eq!(
        newest["opportunities"]["edges"][0]["node"]["id"],
        json!(ids[4])
    );
}

#[tokio::test]
async fn opportunities_filter_by_status_and_client() {
    let app = spawn_app().await;
    let a = create_client(&app, "a@example.com").await;
    let b = create_client(&app, "b@example.com").await;
    let oa = create_opportunity(&app, &a).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_opportunity(&app, &b).await;
    app.data(
        r#"mutation($id: ID!) { updateOpportunityStatus(id: $id, status: PERDU) { id } }"#,
        json!({ "id": oa }),
        Role::Agent,
    )
    .await;
    let count = |filter: Value| {
        let app = &app;
        async move {
            app.data(
                r#"query($f: OpportunityFilter) { opportunities(filter: $f) { totalCount edges { node { id } } } }"#,
                json!({ "f": filter }),
                Role::Agent,
            )
            .await["opportunities"]["totalCount"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(count(json!({ "status": ["PERDU"] })).await, 1);
    assert_eq!(count(json!({ "status": ["NOUVEAU", "PERDU"] })).await, 2);
    assert_eq!(count(json!({ "clientId": b })).await, 1);
    assert_eq!(
        count(json!({ "clientId": a, "status": ["NOUVEAU"] })).await,
        0
    );
}

#[tokio::test]
async fn a_page_larger_than_the_limit_is_refused() {
    let app = spawn_app().await;
    let refusals = [
        (
            "{ opportunities(first: 1000) { totalCount } }",
            "the value is 1000, must be less than or equal to 100",
        ),
        (
            "{ serviceCases(first: -1) { totalCount } }",
            "the value is -1, must be greater than or equal to 0",
        ),
    ];
    for (query, why) in refusals {
        let body = app.post_query(query, Role::Agent).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(
            error_message(&body),
            format!(r#"Failed to parse "Int": {why}"#)
        );
    }
}

#[tokio::test]
async fn clients_are_found_by_name_email_or_any_spelling_of_their_phone() {
    let app = spawn_app().await;
    app.data(
        CREATE_CLIENT,
        json!({ "input": { "firstName": "Éloïse", "lastName": "Tremblay", "email": "eloise@example.com", "phone": "514 555-0111" } }),
        Role::Agent,
    )
    .await;
    app.data(
        CREATE_CLIENT,
        json!({ "input": { "firstName": "Jean", "email": "jean@example.com" } }),
        Role::Agent,
    )
    .await;
    let search = |text: &'static str| {
        let app = &app;
        async move {
            let data = app
                .data(
                    r#"query($s: String) { clients(search: $s) { totalCount edges { node { firstName } } } }"#,
                    json!({ "s": text }),
                    Role::Agent,
                )
                .await;
            data["clients"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["firstName"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("trembl").await, ["Éloïse"]);
    assert_eq!(search("ELOISE@example.com").await, ["Éloïse"]);
    assert_eq!(search("+1 (514) 555-0111").await, ["Éloïse"]);
    assert_eq!(search("100%_").await, Vec::<String>::new());
    assert_eq!(search("").await.len(), 2);
}
