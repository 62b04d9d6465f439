//! The opportunity list sorted by last activity (`orderBy: { field:
//! UPDATED_AT }`), paginated, and as a saved view stores it.
use chrono::Duration;
use crm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, node_ids, set_status, spawn_app, submit_lead};

const LIST: &str = r#"query($order: OpportunityOrder, $first: Int, $after: String, $view: ID) {
  opportunities(orderBy: $order, first: $first, after: $after, viewId: $view) {
    edges { node { id } } pageInfo { hasNextPage endCursor } } }"#;

/// Three opportunities opened an hour apart (a, b, c); then `a` changes
/// status and a lead merges into `b`: by activity, b, a, c (newest first).
async fn three_files(app: &TestApp) -> [String; 3] {
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let lead = submit_lead(app, json!({ "email": format!("{name}@example.com") })).await;
        ids.push(lead["opportunity"]["id"].as_str().unwrap().to_owned());
        app.clock.advance(Duration::hours(1));
    }
    set_status(app, &ids[0], "PRIS_EN_CHARGE", Role::Agent).await;
    app.clock.advance(Duration::hours(1));
    submit_lead(app, json!({ "email": "b@example.com" })).await;
    [ids[0].clone(), ids[1].clone(), ids[2].clone()]
}

fn ids(data: &Value) -> Vec<String> {
    node_ids(&data["opportunities"])
}

#[tokio::test]
async fn the_list_sorts_by_last_activity_and_pages_through_it() {
    let app = spawn_app().await;
    let [a, b, c] = three_files(&app).await;
    let by_activity = json!({ "field": "UPDATED_AT", "direction": "DESC" });

    let all = app
        .data(LIST, json!({ "order": by_activity }), Role::Agent)
        .await;
    assert_eq!(ids(&all), [b.clone(), a.clone(), c.clone()]);
    let by_creation = app.query_data(LIST, Role::Agent).await;
    assert_eq!(ids(&by_creation), [c.clone(), b.clone(), a.clone()]);

    // One row a page: the cursor carries the activity time.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .data(
                LIST,
                json!({ "order": by_activity, "first": 1, "after": after }),
                Role::Agent,
            )
            .await;
        seen.extend(ids(&page));
        let info = &page["opportunities"]["pageInfo"];
        if info["hasNextPage"] != json!(true) {
            break;
        }
        after = info["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, [b.clone(), a.clone(), c.clone()]);

    let oldest_activity_first = json!({ "field": "UPDATED_AT", "direction": "ASC" });
    let asc = app
        .data(LIST, json!({ "order": oldest_activity_first }), Role::Agent)
        .await;
    assert_eq!(ids(&asc), [c, a, b]);
}

#[tokio::test]
async fn a_saved_view_keeps_its_sort_key() {
    let app = spawn_app().await;
    let [a, b, c] = three_files(&app).await;
    let view = app
        .data(
            "mutation($input: CreateSavedViewInput!) { createSavedView(input: $input) { id order } }",
            json!({ "input": {
                "module": "OPPORTUNITIES", "name": "Activité", "visibility": "PRIVATE",
                "opportunityOrder": { "field": "UPDATED_AT", "direction": "ASC" } } }),
            Role::Agent,
        )
        .await["createSavedView"]
        .clone();
    assert_eq!(
        view["order"],
        json!({ "field": "UPDATED_AT", "direction": "ASC" })
    );
    let listed = app
        .data(LIST, json!({ "view": view["id"] }), Role::Agent)
        .await;
    assert_eq!(ids(&listed), [c.clone(), a.clone(), b.clone()]);
    // An explicit order wins over the view's.
    let explicit = app
        .data(
            LIST,
            json!({ "view": view["id"], "order": { "field": "CREATED_AT", "direction": "DESC" } }),
            Role::Agent,
        )
        .await;
    assert_eq!(ids(&explicit), [c, b, a]);
}

#[tokio::test]
async fn a_cursor_of_one_order_is_refused_by_the_other() {
    let app = spawn_app().await;
    three_files(&app).await;
    let by_creation = app.data(LIST, json!({ "first": 1 }), Role::Agent).await;
    let cursor = by_creation["opportunities"]["pageInfo"]["endCursor"].clone();
    let body = app
        .post_graphql(
            LIST,
            json!({ "order": { "field": "UPDATED_AT" }, "first": 1, "after": cursor }),
            Role::Agent,
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}
