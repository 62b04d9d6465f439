//! `expiree`, `expiredAt`, `Lead.decision` and `previewLead` do not exist for
//! anyone but ADMIN: not in introspection, not in validation, not in hints.
use crm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, execute_as, schema_without_admin_wall, spawn_app, submit_lead};

async fn an_opportunity(app: &TestApp) -> String {
    let payload = submit_lead(app, json!({ "email": "secret@example.com" })).await;
    payload["opportunity"]["id"].as_str().unwrap().to_owned()
}

/// The response to a query naming a field that does not exist at all.
async fn unknown_field_response(app: &TestApp, role: Role, id: &str, field: &str) -> Value {
    let query = format!(r#"{{ opportunity(id: "{id}") {{ id {field} }} }}"#);
    app.post_query(&query, role).await
}

#[tokio::test]
async fn an_admin_sees_expiree_and_expired_at() {
    let app = spawn_app().await;
    let id = an_opportunity(&app).await;
    let data = app
        .query_opportunity(&id, "expiree expiredAt", Role::Admin)
        .await;
    assert_eq!(
        data["opportunity"],
        json!({ "expiree": false, "expiredAt": null })
    );
}

#[tokio::test]
async fn naming_expiree_is_rejected_exactly_like_an_unknown_field() {
    let app = spawn_app().await;
    let id = an_opportunity(&app).await;
    for role in [Role::Agent, Role::Partner] {
        for field in ["expiree", "expiredAt"] {
            let hidden = unknown_field_response(&app, role, &id, field).await;
            let unknown = unknown_field_response(&app, role, &id, "nosuchfield").await;
            let normalise = |v: &Value| {
                v.to_string()
                    .replace(field, "X")
                    .replace("nosuchfield", "X")
            };
            assert_eq!(normalise(&hidden), normalise(&unknown), "{role:?} {field}");
            assert_eq!(
                hidden["errors"][0]["message"],
                format!("Unknown field \"{field}\" on type \"Opportunity\".")
            );
            assert!(hidden.get("data").is_none_or(Value::is_null), "{hidden}");
        }
    }
}

#[tokio::test]
async fn a_misused_hidden_field_answers_exactly_like_a_misused_unknown_field() {
    let app = spawn_app().await;
    let id = an_opportunity(&app).await;
    // (query naming a hidden field, the hidden name); its twin names a field
    // that does not exist at all, in the same place and the same way.
    let cases: &[(&str, &[&str])] = &[
        (
            r#"query($id: ID!) { opportunity(id: $id) { id expiree { x } } }"#,
            &["expiree"],
        ),
        (
            r#"query($id: ID!) { opportunity(id: $id) { expiredAt(tz: 1) } }"#,
            &["expiredAt"],
        ),
        (
            r#"{ leads { edges { node { id decision } } } }"#,
            &["decision"],
        ),
        (
            r#"{ leads { edges { node { decision { nosuch } } } } }"#,
            &["decision"],
        ),
        (r#"{ previewLead }"#, &["previewLead"]),
        (
            r#"{ previewLead(input: { email: 5 }) { outcome } }"#,
            &["previewLead"],
        ),
        (
            r#"query($i: SubmitLeadInput!) { previewLead(input: $i) { outcome } }"#,
            &["previewLead"],
        ),
        // Inline fragments re-establish a type below an unknown field.
        (
            r#"{ nope { ... on Opportunity { expiree } } }"#,
            &["expiree"],
        ),
        (
            r#"{ nope { ... on Opportunity { expiree { a } } } }"#,
            &["expiree"],
        ),
        (
            r#"{ nope { ... on LeadDecision { outcome } } }"#,
            &["LeadDecision"],
        ),
        (
            r#"{ nope { ... on Query { previewLead } } }"#,
            &["previewLead"],
        ),
        (
            r#"{ leads { edges { node { decision { ... on LeadDecision { outcome } } } } } }"#,
            &["decision", "LeadDecision"],
        ),
        (
            r#"fragment F on LeadDecision { outcome } { __typename }"#,
            &["LeadDecision"],
        ),
        (
            r#"query($v: LeadDecision) { __typename }"#,
            &["LeadDecision"],
        ),
        (
            r#"query($v: [LeadDecision!]) { __typename }"#,
            &["LeadDecision"],
        ),
        (
            r#"{ a: opportunities { totalCount } a: opportunities { edges { node { a: expiree } } } }"#,
            &["expiree"],
        ),
        // Text the caller typed is quoted back as typed.
        (
            r#"{ opportunities(filter: { status: ["expiree#"] }) { edges { node { expiree } } } }"#,
            &["expiree"],
        ),
    ];
    for role in [Role::Agent, Role::Partner] {
        for (query, hidden) in cases {
            // Same lengths, so every error position is the same too.
            let unknown: Vec<String> = hidden
                .iter()
                .enumerate()
                .map(|(i, h)| ["z", "y"][i].repeat(h.len()))
                .collect();
            let mut twin = query.to_string();
            for (h, u) in hidden.iter().zip(&unknown) {
                twin = twin.replace(h, u);
            }
            let vars = json!({ "id": id, "i": { "email": "a@b.ca" } });
            let hidden_body = app.post_graphql(query, vars.clone(), role).await;
            let twin_body = app.post_graphql(&twin, vars, role).await;
            assert!(
                hidden_body["errors"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty())
            );
            let mut hidden_text = hidden_body.to_string();
            for (h, u) in hidden.iter().zip(&unknown) {
                hidden_text = hidden_text.replace(h, u);
            }
            assert_eq!(hidden_text, twin_body.to_string(), "{role:?}: {query}");
        }
    }
}

#[tokio::test]
async fn aliases_and_fragments_do_not_reach_expiree() {
    let app = spawn_app().await;
    let id = an_opportunity(&app).await;
    let queries = [
        r#"query($id: ID!) { opportunity(id: $id) { id flag: expiree } }"#,
        r#"query($id: ID!) { opportunity(id: $id) { ...F } } fragment F on Opportunity { expiredAt }"#,
        r#"query($id: ID!) { opportunity(id: $id) { ... on Opportunity { expiree } } }"#,
        r#"query { opportunities { edges { node { ... { expiree } } } } }"#,
        r#"query($id: ID!) { opportunity(id: $id) { leads { decision { outcome } } } }"#,
        r#"query { previewLead(input: { email: "a@b.ca" }) { outcome } }"#,
    ];
    for role in [Role::Agent, Role::Partner] {
        for query in queries {
            let body = app.post_graphql(query, json!({ "id": id }), role).await;
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("Unknown field"),
                "{role:?} {query}: {body}"
            );
            assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        }
    }
}

#[tokio::test]
async fn no_suggestion_ever_names_a_hidden_field() {
    let app = spawn_app().await;
    let id = an_opportunity(&app).await;
    for role in [Role::Agent, Role::Partner, Role::Admin] {
        let body = unknown_field_response(&app, role, &id, "expire").await;
        let text = body.to_string();
        assert!(!text.contains("Did you mean"), "{text}");
        assert!(!text.contains("expiree"), "{text}");
    }
}

#[tokio::test]
async fn introspection_shows_the_hidden_fields_to_admins_only() {
    let app = spawn_app().await;
    let names = |role| app.introspected_names("Opportunity", "fields", role);
    let admin = names(Role::Admin).await;
    assert!(admin.contains(&"expiree".to_owned()) && admin.contains(&"expiredAt".to_owned()));
    for role in [Role::Agent, Role::Partner] {
        let fields = names(role).await;
        assert!(fields.contains(&"status".to_owned()));
        assert!(
            !fields.iter().any(|f| f.starts_with("expire")),
            "{fields:?}"
        );
        let schema = app
            .query_data("{ __schema { types { name fields { name } } } }", role)
            .await
            .to_string();
        for hidden in [
            "expiree",
            "expiredAt",
            "decision",
            "previewLead",
            "LeadDecision",
        ] {
            assert!(!schema.contains(hidden), "{role:?} sees {hidden}");
        }
    }
}

#[tokio::test]
async fn without_the_validation_wall_the_resolver_guard_still_refuses() {
    let app = spawn_app().await;
    let id = an_opportunity(&app).await;
    let schema = schema_without_admin_wall(&app).await;
    let query = format!(r#"{{ opportunity(id: "{id}") {{ expiree }} }}"#);
    for role in [Role::Agent, Role::Partner] {
        let response = execute_as(&schema, query.clone(), "x", role).await;
        let code = &response["errors"][0]["extensions"]["code"];
        assert!(code == "FORBIDDEN", "{role:?}: {response}");
        assert!(!response.to_string().contains("false"), "{response}");
    }
    let response = execute_as(&schema, query, "a", Role::Admin).await;
    assert_eq!(
        response["data"]["opportunity"]["expiree"], false,
        "{response}"
    );
}
