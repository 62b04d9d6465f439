//! Saved views ("filtres"): owner and visibility rules, `viewId` on the
//! lists, and ADMIN's `expiree` filter walled from everybody else (SPEC 6, 3).
use chrono::Duration;
use crm::auth::Role;
use serde_json::{Value, json};

use crate::crm_support::{case_for, client, lead, update_case};
use crate::helpers::{
    TestApp, error_code, execute_as, node_ids, schema_without_admin_wall, spawn_app, sweep_on_day,
};

const CREATE: &str = "mutation($input: CreateSavedViewInput!) { createSavedView(input: $input) { id module name visibility owner filter order } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateSavedViewInput!) { updateSavedView(id: $id, input: $input) { id name visibility filter updatedAt } }";
const DELETE: &str = "mutation($id: ID!) { deleteSavedView(id: $id) }";
const VIEWS: &str = "query($m: ViewModule!) { savedViews(module: $m) { id name filter visibility owner updatedAt } }";
const CASES: &str = "query($v: ID, $f: ServiceCaseFilter) { serviceCases(viewId: $v, filter: $f) { totalCount edges { node { id } } } }";

async fn create_as(app: &TestApp, token: &str, input: Value) -> Value {
    app.post_as(CREATE, json!({ "input": input }), token).await
}

/// Create a view as `token`'s holder; its id.
async fn new_view(app: &TestApp, token: &str, input: Value) -> String {
    view_id(&create_as(app, token, input).await)
}

fn view_id(body: &Value) -> String {
    body["data"]["createSavedView"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

#[tokio::test]
async fn a_view_applies_its_filter_and_an_explicit_filter_narrows_it_further() {
    let app = spawn_app().await;
    let luc = client(&app, "Luc", "Roy", "luc@example.com", None).await;
    let ana = client(&app, "Ana", "Roy", "ana@example.com", None).await;
    let a = case_for(&app, &luc, "A", Some("tech-1")).await;
    let b = case_for(&app, &ana, "B", Some("tech-2")).await;
    let c = case_for(&app, &luc, "C", Some("tech-2")).await;
    update_case(&app, &c, json!({ "status": "FERME" })).await;
    let agent = app.token(Role::Agent);
    let open = new_view(&app, &agent, json!({ "module": "SERVICE_CASES", "name": "Ouverts", "visibility": "PRIVATE", "serviceCaseFilter": { "status": ["OUVERT", "EN_COURS"] } })).await;
    let data = app.data(CASES, json!({ "v": open }), Role::Agent).await;
    assert_eq!(node_ids(&data["serviceCases"]), [b.clone(), a.clone()]);
    assert_eq!(data["serviceCases"]["totalCount"], 2);
    let data = app
        .data(
            CASES,
            json!({ "v": open, "f": { "clientId": luc } }),
            Role::Agent,
        )
        .await;
    assert_eq!(node_ids(&data["serviceCases"]), [a.as_str()]);
    // Both must hold: the explicit filter cannot widen the view.
    let data = app
        .data(
            CASES,
            json!({ "v": open, "f": { "status": ["FERME"] } }),
            Role::Agent,
        )
        .await;
    assert_eq!(node_ids(&data["serviceCases"]), Vec::<String>::new());

    // Opportunities: the view's filter and order.
    let (_, first) = lead(&app, json!({ "email": "x1@example.com" })).await;
    app.clock.advance(Duration::minutes(1));
    let (_, second) = lead(&app, json!({ "email": "x2@example.com" })).await;
    let oldest_first = new_view(&app, &agent, json!({ "module": "OPPORTUNITIES", "name": "Anciennes", "visibility": "SHARED", "opportunityFilter": { "status": ["NOUVEAU"] }, "opportunityOrder": { "direction": "ASC" } })).await;
    let data = app
        .data(
            "query($v: ID) { opportunities(viewId: $v) { edges { node { id } } } }",
            json!({ "v": oldest_first }),
            Role::Agent,
        )
        .await;
    assert_eq!(node_ids(&data["opportunities"]), [first, second]);

    // Credit requests take views too.
    let credit = new_view(&app, &agent, json!({ "module": "CREDIT_REQUESTS", "name": "Reçues", "visibility": "PRIVATE", "creditRequestFilter": { "status": ["RECUE"] } })).await;
    let data = app
        .data(
            "query($v: ID) { creditRequests(viewId: $v) { totalCount } }",
            json!({ "v": credit }),
            Role::Agent,
        )
        .await;
    assert_eq!(data["creditRequests"]["totalCount"], 0);
}

#[tokio::test]
async fn a_view_or_a_filter_of_another_module_is_bad_input_and_an_unknown_view_not_found() {
    let app = spawn_app().await;
    let agent = app.token(Role::Agent);
    let body = create_as(&app, &agent, json!({ "module": "SERVICE_CASES", "name": "x", "visibility": "PRIVATE", "creditRequestFilter": { "status": ["RECUE"] } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = create_as(&app, &agent, json!({ "module": "CREDIT_REQUESTS", "name": "x", "visibility": "PRIVATE", "opportunityOrder": { "direction": "ASC" } })).await;
    app.assert_refused(&body, "BAD_USER_INPUT", "saved_view", 0)
        .await;
    let cases = new_view(
        &app,
        &agent,
        json!({ "module": "SERVICE_CASES", "name": "x", "visibility": "SHARED" }),
    )
    .await;
    let unknown = "0190f2a0-0000-7000-8000-000000000000";
    for (query, variables, code) in [
        (
            "query($v: ID) { creditRequests(viewId: $v) { totalCount } }",
            json!({ "v": cases }),
            "BAD_USER_INPUT",
        ),
        (
            "query($v: ID) { opportunities(viewId: $v) { totalCount } }",
            json!({ "v": cases }),
            "BAD_USER_INPUT",
        ),
        (
            UPDATE,
            json!({ "id": cases, "input": { "opportunityFilter": { "status": ["NOUVEAU"] } } }),
            "BAD_USER_INPUT",
        ),
        (CASES, json!({ "v": unknown }), "NOT_FOUND"),
    ] {
        let body = app.post_graphql(query, variables, Role::Agent).await;
        assert_eq!(error_code(&body), code, "{query}: {body}");
    }
}

#[tokio::test]
async fn only_the_owner_changes_a_view_and_a_foreign_private_view_does_not_exist() {
    let app = spawn_app().await;
    let alice = app.token_for(Role::Agent, "alice");
    let bob = app.token_for(Role::Agent, "bob");
    let private = new_view(&app, &alice, json!({ "module": "SERVICE_CASES", "name": "Mes dossiers", "visibility": "PRIVATE", "serviceCaseFilter": { "assignee": "alice" } })).await;
    let shared = new_view(
        &app,
        &alice,
        json!({ "module": "SERVICE_CASES", "name": "Équipe", "visibility": "SHARED" }),
    )
    .await;
    // Bob sees the shared view only, may use it, not change it.
    let bobs = app
        .post_as(VIEWS, json!({ "m": "SERVICE_CASES" }), &bob)
        .await;
    let names: Vec<&str> = bobs["data"]["savedViews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Équipe"]);
    assert!(
        app.post_as(CASES, json!({ "v": shared }), &bob)
            .await
            .get("errors")
            .is_none()
    );
    for (query, variables) in [
        (UPDATE, json!({ "id": shared, "input": { "name": "Pris" } })),
        (DELETE, json!({ "id": shared })),
    ] {
        assert_eq!(
            error_code(&app.post_as(query, variables, &bob).await),
            "FORBIDDEN"
        );
    }
    for (query, variables) in [
        (
            UPDATE,
            json!({ "id": private, "input": { "name": "Pris" } }),
        ),
        (DELETE, json!({ "id": private })),
        (CASES, json!({ "v": private })),
    ] {
        assert_eq!(
            error_code(&app.post_as(query, variables, &bob).await),
            "NOT_FOUND"
        );
    }
    // Alice changes hers; an admin may delete any view.
    let renamed = app
        .post_as(
            UPDATE,
            json!({ "id": private, "input": { "name": "Les miens", "visibility": "SHARED" } }),
            &alice,
        )
        .await;
    assert_eq!(
        renamed["data"]["updateSavedView"]["name"], "Les miens",
        "{renamed}"
    );
    let admin = app.token(Role::Admin);
    let deleted = app.post_as(DELETE, json!({ "id": shared }), &admin).await;
    assert_eq!(
        deleted["data"]["deleteSavedView"],
        shared.as_str(),
        "{deleted}"
    );
    assert_eq!(app.count("saved_view").await, 1);
}

#[tokio::test]
async fn creating_changing_or_deleting_one_view_never_alters_another() {
    let app = spawn_app().await;
    let agent = app.token(Role::Agent);
    let keep = new_view(&app, &agent, json!({ "module": "SERVICE_CASES", "name": "Garder", "visibility": "SHARED", "serviceCaseFilter": { "status": ["OUVERT"], "assignee": "tech-1" } })).await;
    let before = app
        .post_as(VIEWS, json!({ "m": "SERVICE_CASES" }), &agent)
        .await["data"]["savedViews"][0]
        .clone();
    // Same name, same module: a second view, not an overwrite.
    let twin = new_view(&app, &agent, json!({ "module": "SERVICE_CASES", "name": "Garder", "visibility": "SHARED", "serviceCaseFilter": { "status": ["FERME"] } })).await;
    app.clock.advance(Duration::minutes(5));
    let changed = app.post_as(UPDATE, json!({ "id": twin, "input": { "name": "Autre", "serviceCaseFilter": { "assignee": "tech-9" } } }), &agent).await;
    assert_eq!(
        changed["data"]["updateSavedView"]["filter"],
        json!({ "assignee": "tech-9" }),
        "{changed}"
    );
    app.post_as(DELETE, json!({ "id": twin }), &agent).await;
    let after = app
        .post_as(VIEWS, json!({ "m": "SERVICE_CASES" }), &agent)
        .await["data"]["savedViews"]
        .clone();
    assert_eq!(after, json!([before]));
    assert_eq!(after[0]["id"], keep.as_str());
    assert_eq!(
        after[0]["filter"],
        json!({ "status": ["OUVERT"], "assignee": "tech-1" })
    );
}

#[tokio::test]
async fn the_expiree_filter_and_the_views_using_it_exist_for_admins_only() {
    let app = spawn_app().await;
    let (_, old) = lead(&app, json!({ "email": "old@example.com" })).await;
    sweep_on_day(&app, 57).await;
    let (_, live) = lead(&app, json!({ "email": "live@example.com" })).await;

    // ADMIN filters by it, directly and through a shared view.
    let admin = app.token(Role::Admin);
    let list = "query($f: OpportunityFilter, $v: ID) { opportunities(filter: $f, viewId: $v) { totalCount edges { node { id } } } }";
    let data = app
        .data(list, json!({ "f": { "expiree": true } }), Role::Admin)
        .await;
    assert_eq!(node_ids(&data["opportunities"]), [old.as_str()]);
    let expired_view = new_view(&app, &admin, json!({ "module": "OPPORTUNITIES", "name": "Expirées", "visibility": "SHARED", "opportunityFilter": { "expiree": true } })).await;
    let data = app
        .data(
            list,
            json!({ "v": expired_view, "f": { "expiree": false } }),
            Role::Admin,
        )
        .await;
    assert_eq!(node_ids(&data["opportunities"]), Vec::<String>::new());
    let data = app
        .data(list, json!({ "v": expired_view }), Role::Admin)
        .await;
    assert_eq!(node_ids(&data["opportunities"]), [old.as_str()]);

    // An agent: the shared admin view does not exist.
    let views = app
        .data(VIEWS, json!({ "m": "OPPORTUNITIES" }), Role::Agent)
        .await;
    assert_eq!(views["savedViews"], json!([]));
    let body = app
        .post_graphql(list, json!({ "v": expired_view }), Role::Agent)
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        app.post_graphql(
            list,
            json!({ "v": "0190f2a0-0000-7000-8000-000000000000" }),
            Role::Agent
        )
        .await["errors"][0]["message"]
    );
    for (query, variables) in [
        (
            UPDATE,
            json!({ "id": expired_view, "input": { "name": "x" } }),
        ),
        (DELETE, json!({ "id": expired_view })),
    ] {
        assert_eq!(
            error_code(&app.post_graphql(query, variables, Role::Agent).await),
            "NOT_FOUND"
        );
    }

    // An agent naming the field is answered exactly as for an unknown field:
    // in a literal, in a variable, nested in a saved view's input.
    let same_as_unknown = |hidden: Value, unknown: Value| {
        let a = hidden.to_string().replace("expiree", "zzzzzzz");
        let b = unknown.to_string();
        assert_eq!(a, b);
    };
    let literal =
        |field: &str| format!("{{ opportunities(filter: {{ {field}: true }}) {{ totalCount }} }}");
    same_as_unknown(
        app.post_query(&literal("expiree"), Role::Agent).await,
        app.post_query(&literal("zzzzzzz"), Role::Agent).await,
    );
    same_as_unknown(
        app.post_graphql(list, json!({ "f": { "expiree": true } }), Role::Agent)
            .await,
        app.post_graphql(list, json!({ "f": { "zzzzzzz": true } }), Role::Agent)
            .await,
    );
    let input = |field: &str| json!({ "input": { "module": "OPPORTUNITIES", "name": "x", "visibility": "PRIVATE", "opportunityFilter": { field: true } } });
    same_as_unknown(
        app.post_graphql(CREATE, input("expiree"), Role::Agent)
            .await,
        app.post_graphql(CREATE, input("zzzzzzz"), Role::Agent)
            .await,
    );
    let hidden = app.post_query(&literal("expiree"), Role::Agent).await;
    assert_eq!(error_code(&hidden), "GRAPHQL_VALIDATION_FAILED", "{hidden}");
    assert!(!hidden.to_string().contains('#'), "{hidden}");

    // Absent from the agent's introspection, present in the admin's.
    let names = |role| app.introspected_names("OpportunityFilter", "inputFields", role);
    assert!(!names(Role::Agent).await.contains(&"expiree".to_owned()));
    assert!(names(Role::Admin).await.contains(&"expiree".to_owned()));

    // And an agent's lists and counts are blind to it.
    let data = app.query_data(list, Role::Agent).await;
    assert_eq!(data["opportunities"]["totalCount"], 2);
    assert_eq!(node_ids(&data["opportunities"]), [live, old]);
}

/// Second wall: without the validation wall, the resolvers still refuse a
/// non-admin's `expiree` filter, directly and in a saved view.
#[tokio::test]
async fn the_resolvers_refuse_the_expiree_filter_to_a_non_admin_even_without_the_wall() {
    let app = spawn_app().await;
    let schema = schema_without_admin_wall(&app).await;
    for query in [
        "{ opportunities(filter: { expiree: true }) { totalCount } }",
        "mutation { createSavedView(input: { module: OPPORTUNITIES, name: \"x\", visibility: SHARED, opportunityFilter: { expiree: true } }) { id } }",
    ] {
        let response = execute_as(&schema, query, "agent-1", Role::Agent).await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{response}"
        );
    }
    assert_eq!(app.count("saved_view").await, 0);
}
