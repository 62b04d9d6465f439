//! SPEC section 3, `submitLead`: every row of the decision table over HTTP.
use chrono::Duration;
use crm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{
    SUBMIT_LEAD, ServerProcess, TestApp, TestDatabase, assert_fields, error_code, error_message,
    set_status, spawn_app, spawn_app_on, submit_concurrently, submit_lead,
};

/// Asking for `field` was refused before anything ran, as an unknown field is.
fn refused_in_validation(body: &Value, field: &str) {
    assert_eq!(
        error_code(body),
        "GRAPHQL_VALIDATION_FAILED",
        "{field}: {body}"
    );
}

fn id(v: &Value) -> String {
    v["opportunity"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_first_lead_creates_the_client_and_a_new_opportunity() {
    let app = spawn_app().await;
    let payload = submit_lead(
        &app,
        json!({ "firstName": "Marie", "email": "Marie@Example.com", "phone": "514 555-0199", "source": "site-web" }),
    )
    .await;
    assert_eq!(payload["outcome"], "NEW_OPPORTUNITY");
    assert_eq!(payload["opportunity"]["status"], "NOUVEAU");
    assert_eq!(payload["lead"]["email"], "marie@example.com");
    assert_eq!(payload["lead"]["phone"], "+15145550199");
    assert_eq!(app.count("client").await, 1);
    assert_eq!(app.count("client_contact").await, 2);
}

#[tokio::test]
async fn a_second_lead_of_the_same_client_merges_into_the_live_opportunity() {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "marie@example.com" })).await;
    app.clock.advance(Duration::days(3));
    // Same person, found by a phone spelt another way after the first lead added it.
    submit_lead(
        &app,
        json!({ "email": "MARIE@example.com", "phone": "(514) 555 0199" }),
    )
    .await;
    let third = submit_lead(&app, json!({ "phone": "+1 514-555-0199" })).await;
    assert_eq!(third["outcome"], "MERGED");
    assert_eq!(id(&third), id(&first));
    let data = app
        .query_opportunity(
            &id(&first),
            "updatedAt createdAt leads { edges { node { outcome receivedAt } } }",
            Role::Agent,
        )
        .await;
    let leads = data["opportunity"]["leads"]["edges"].as_array().unwrap();
    assert_eq!(leads.len(), 3);
    assert_eq!(leads[0]["node"]["outcome"], "NEW_OPPORTUNITY");
    assert_ne!(
        data["opportunity"]["updatedAt"],
        data["opportunity"]["createdAt"]
    );
}

#[tokio::test]
async fn a_lead_one_second_before_eight_weeks_merges_and_at_eight_weeks_opens_a_new_one() {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "b@example.com" })).await;
    app.clock.advance(Duration::days(56) - Duration::seconds(1));
    let merged = submit_lead(&app, json!({ "email": "b@example.com" })).await;
    assert_eq!(merged["outcome"], "MERGED");
    app.clock.advance(Duration::seconds(1));
    let fresh = submit_lead(&app, json!({ "email": "b@example.com" })).await;
    assert_eq!(fresh["outcome"], "NEW_OPPORTUNITY");
    assert_ne!(id(&fresh), id(&first));
    // The old one was flagged by the intake itself, at the lead's time.
    let data = app
        .query_opportunity(&id(&first), "expiree expiredAt", Role::Admin)
        .await;
    assert_eq!(data["opportunity"]["expiree"], true);
    let expired_at: chrono::DateTime<chrono::Utc> = data["opportunity"]["expiredAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expired_at, crate::helpers::t0() + Duration::days(56));
}

/// A lead, its opportunity then set to `status`, and `later` another lead
/// from the same email: the first opportunity's id and the second payload.
async fn next_lead_after(status: &str, later: Duration) -> (String, Value) {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "c@example.com" })).await;
    set_status(&app, &id(&first), status, Role::Agent).await;
    app.clock.advance(later);
    let next = submit_lead(&app, json!({ "email": "c@example.com" })).await;
    (id(&first), next)
}

#[tokio::test]
async fn a_protected_opportunity_keeps_taking_leads_after_eight_weeks() {
    for status in ["PRIS_EN_CHARGE", "VENDU_NON_LIVRE", "SUIVI_LONG_TERME"] {
        let (first, next) = next_lead_after(status, Duration::days(200)).await;
        assert_eq!(next["outcome"], "MERGED", "{status}");
        assert_eq!(id(&next), first);
    }
}

#[tokio::test]
async fn an_unprotected_old_opportunity_expires_with_the_next_lead_whatever_its_status() {
    for status in ["NOUVEAU", "VENDU_LIVRE", "PERDU"] {
        let (_, next) = next_lead_after(status, Duration::days(56)).await;
        assert_eq!(next["outcome"], "NEW_OPPORTUNITY", "{status}");
    }
}

/// The opportunity is `expiree`, and the client's next lead (by `email`)
/// opens a new one.
async fn expired_and_replaced_by_the_next_lead(app: &TestApp, opportunity: &str, email: &str) {
    let data = app
        .query_opportunity(opportunity, "expiree", Role::Admin)
        .await;
    assert_eq!(data["opportunity"]["expiree"], true, "{data}");
    let next = submit_lead(app, json!({ "email": email })).await;
    assert_eq!(next["outcome"], "NEW_OPPORTUNITY", "{next}");
}

#[tokio::test]
async fn leaving_the_protected_set_after_eight_weeks_expires_at_that_moment() {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "e@example.com" })).await;
    set_status(&app, &id(&first), "SUIVI_LONG_TERME", Role::Agent).await;
    app.clock.advance(Duration::days(90));
    set_status(&app, &id(&first), "PERDU", Role::Agent).await;
    let data = app
        .query_opportunity(&id(&first), "expiree expiredAt", Role::Admin)
        .await;
    assert_eq!(data["opportunity"]["expiree"], true);
    // Sticky: back to a protected status does not un-expire it.
    set_status(&app, &id(&first), "PRIS_EN_CHARGE", Role::Admin).await;
    expired_and_replaced_by_the_next_lead(&app, &id(&first), "e@example.com").await;
}

#[tokio::test]
async fn the_email_wins_when_email_and_phone_point_to_two_clients_and_the_conflict_is_recorded() {
    let app = spawn_app().await;
    let a = submit_lead(&app, json!({ "email": "a@example.com" })).await;
    let b = submit_lead(&app, json!({ "phone": "418 555-0100" })).await;
    assert_ne!(id(&a), id(&b));
    let both = app
        .data(
            r#"mutation($i: SubmitLeadInput!) { submitLead(input: $i) { outcome opportunity { id }
                 lead { contactConflict { kind value otherClientId } client { id phones } } } }"#,
            json!({ "i": { "email": "a@example.com", "phone": "4185550100" } }),
            Role::Agent,
        )
        .await["submitLead"]
        .clone();
    assert_eq!(both["outcome"], "MERGED");
    assert_eq!(both["opportunity"]["id"], a["opportunity"]["id"]);
    let conflict = &both["lead"]["contactConflict"];
    assert_eq!(conflict["kind"], "PHONE");
    assert_eq!(conflict["value"], "+14185550100");
    // The phone stays with its owner; clients are never merged silently.
    assert_eq!(both["lead"]["client"]["phones"], json!([]));
    assert_eq!(app.count("client").await, 2);
}

#[tokio::test]
async fn a_lead_without_a_valid_contact_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    for (input, field) in [
        (json!({ "firstName": "Nobody" }), "email"),
        (json!({ "email": "not-an-email" }), "email"),
        (json!({ "phone": "12" }), "phone"),
        (
            json!({ "email": "x@example.com", "message": "m".repeat(5001) }),
            "message",
        ),
        (
            json!({ "email": "x@example.com", "vehicle": { "year": 1800 } }),
            "vehicle.year",
        ),
    ] {
        let body = app
            .post_graphql(SUBMIT_LEAD, json!({ "input": input }), Role::Agent)
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert!(error_message(&body).starts_with(field));
    }
    for table in ["client", "client_contact", "opportunity", "lead"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_bad_phone_beside_a_good_email_is_kept_raw_with_a_warning() {
    let app = spawn_app().await;
    let payload = submit_lead(&app, json!({ "email": "f@example.com", "phone": "555-01" })).await;
    assert_eq!(payload["outcome"], "NEW_OPPORTUNITY");
    assert_eq!(payload["warnings"][0]["field"], "phone");
    assert_eq!(payload["lead"]["phone"], Value::Null);
    assert_eq!(payload["lead"]["submittedPhone"], "555-01");
    assert_eq!(app.count("client_contact").await, 1);
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_original_result_and_stores_nothing() {
    let app = spawn_app().await;
    let input = json!({ "email": "g@example.com", "idempotencyKey": "order-42" });
    let first = submit_lead(&app, input.clone()).await;
    app.clock.advance(Duration::days(60));
    let again = submit_lead(&app, input.clone()).await;
    assert_eq!(again, first);
    assert_eq!(app.count("lead").await, 1);
    // Another principal may use the same key for its own lead.
    let token = app.token_for(Role::Agent, "agent-2");
    let other = app
        .post_as(SUBMIT_LEAD, json!({ "input": input }), &token)
        .await;
    assert_ne!(
        other["data"]["submitLead"]["lead"]["id"],
        first["lead"]["id"]
    );
    // The same key with another body is a conflict.
    let body = app
        .post_graphql(
            SUBMIT_LEAD,
            json!({ "input": { "email": "other@example.com", "idempotencyKey": "order-42" } }),
            Role::Agent,
        )
        .await;
    app.assert_refused(&body, "CONFLICT", "lead", 2).await;
}

#[tokio::test]
async fn a_partner_gets_the_same_answer_shape_whether_its_lead_merged_or_opened_an_opportunity() {
    let app = spawn_app().await;
    let partner = |input: Value| {
        let app = &app;
        async move {
            app.data(
                crate::helpers::PARTNER_SUBMIT_LEAD,
                json!({ "input": input }),
                Role::Partner,
            )
            .await["submitLead"]
                .clone()
        }
    };
    let opened = partner(json!({ "email": "shape@example.com" })).await;
    let merged = partner(json!({ "email": "shape@example.com" })).await;
    app.clock.advance(Duration::days(60));
    let after_expiry = partner(json!({ "email": "shape@example.com" })).await;
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.extend(
            v["lead"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| format!("lead.{k}")),
        );
        keys.sort();
        keys
    };
    assert_eq!(shape(&opened), shape(&merged));
    assert_eq!(shape(&merged), shape(&after_expiry));
    // The CRM did route them: one merge, then a new opportunity.
    assert_eq!(app.count("opportunity").await, 2);
    assert_eq!(app.count("lead").await, 3);

    // Naming what the CRM did is refused like any unknown field, before
    // anything is stored.
    for field in ["outcome", "opportunity { id }", "client { id }"] {
        let query = format!(
            r#"mutation($input: SubmitLeadInput!) {{ submitLead(input: $input) {{ lead {{ id }} {field} }} }}"#
        );
        let body = app
            .post_graphql(
                &query,
                json!({ "input": { "email": "shape@example.com" } }),
                Role::Partner,
            )
            .await;
        refused_in_validation(&body, field);
        let name = field.split(' ').next().unwrap();
        assert_eq!(
            body["errors"][0]["message"],
            format!("Unknown field \"{name}\" on type \"SubmitLeadPayload\"."),
        );
    }
    assert_eq!(app.count("lead").await, 3);
}

#[tokio::test]
async fn a_partner_reads_back_its_own_leads_and_nothing_of_the_crm() {
    let app = spawn_app().await;
    let payload = app
        .data(
            crate::helpers::PARTNER_SUBMIT_LEAD,
            json!({ "input": { "email": "h@example.com", "source": "portail" } }),
            Role::Partner,
        )
        .await["submitLead"]
        .clone();
    let lead_id = payload["lead"]["id"].as_str().unwrap();
    let query = r#"query($id: ID!) { lead(id: $id) { id receivedAt source warnings { field } } }"#;
    let data = app
        .data(query, json!({ "id": lead_id }), Role::Partner)
        .await;
    assert_eq!(data["lead"]["source"], "portail");
    for field in [
        "client { id }",
        "opportunity { status }",
        "outcome",
        "contactConflict { kind }",
    ] {
        let body = app
            .post_graphql(
                &format!(r#"query($id: ID!) {{ lead(id: $id) {{ {field} }} }}"#),
                json!({ "id": lead_id }),
                Role::Partner,
            )
            .await;
        refused_in_validation(&body, field);
    }
    let stranger = app.token_for(Role::Partner, "partner-2");
    let body = app
        .post_as(query, json!({ "id": lead_id }), &stranger)
        .await;
    assert_eq!(body["data"]["lead"], Value::Null);
    let leads = app
        .post_as("{ leads { totalCount } }", json!({}), &stranger)
        .await;
    assert_eq!(leads["data"]["leads"]["totalCount"], 0);
    let own = app
        .query_data(
            "{ leads { totalCount edges { node { id } } } }",
            Role::Partner,
        )
        .await;
    assert_eq!(own["leads"]["totalCount"], 1);
    assert_eq!(own["leads"]["edges"][0]["node"]["id"], lead_id);
}

#[tokio::test]
async fn an_admin_sees_the_decision_and_can_preview_without_writing() {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "i@example.com" })).await;
    app.clock.advance(Duration::days(56));
    let preview = app
        .query_data(
            r#"{ previewLead(input: { email: "I@example.com" }) { outcome candidateState candidateOpportunityId matchedBy windowDays } }"#,
            Role::Admin,
        )
        .await["previewLead"]
        .clone();
    assert_eq!(preview["outcome"], "NEW_OPPORTUNITY");
    assert_eq!(preview["candidateState"], "EXPIRED_NOW");
    assert_eq!(
        preview["candidateOpportunityId"],
        first["opportunity"]["id"]
    );
    assert_eq!(preview["matchedBy"], "EMAIL");
    assert_eq!(app.count("lead").await, 1);
    assert_eq!(app.count("opportunity_expiry_event").await, 0);
    let second = submit_lead(&app, json!({ "email": "i@example.com" })).await;
    let decision = app
        .data(
            r#"query($id: ID!) { lead(id: $id) { decision { outcome candidateState expiredOpportunityIds } } }"#,
            json!({ "id": second["lead"]["id"] }),
            Role::Admin,
        )
        .await;
    assert_eq!(
        decision["lead"]["decision"]["candidateState"],
        "EXPIRED_NOW"
    );
    assert_eq!(
        decision["lead"]["decision"]["expiredOpportunityIds"],
        json!([first["opportunity"]["id"]])
    );
}

/// 50 simultaneous leads for one new client: one client, one opportunity,
/// every lead attached. All carry the email (in various spellings), some
/// the phone too: a lead with only a phone for a client nobody knows yet
/// has nothing that links it to an email-only lead.
async fn fifty_concurrent_leads(apps: &[&crate::helpers::TestApp]) {
    let inputs = (0..50)
        .map(|i| match i % 3 {
            0 => json!({ "email": "rush@example.com" }),
            1 => json!({ "email": " RUSH@example.com", "phone": "514 555 0142" }),
            _ => json!({ "email": "Rush@Example.com", "phone": "+1 (514) 555-0142" }),
        })
        .collect();
    let payloads = submit_concurrently(apps, inputs).await;
    let new_opportunities = payloads
        .iter()
        .filter(|p| p["outcome"] == "NEW_OPPORTUNITY")
        .count();
    let app = apps[0];
    assert_eq!(new_opportunities, 1);
    assert_eq!(app.count("client").await, 1);
    assert_eq!(app.count("opportunity").await, 1);
    assert_eq!(app.count("lead").await, 50);
    assert_eq!(app.count("client_contact").await, 2);
}

#[tokio::test]
async fn fifty_concurrent_leads_for_a_new_client_give_one_client_one_opportunity_fifty_leads() {
    let app = spawn_app().await;
    fifty_concurrent_leads(&[&app]).await;
}

#[tokio::test]
async fn two_server_instances_sharing_one_database_still_open_one_opportunity() {
    let app = spawn_app().await;
    let other = spawn_app_on(app.database.clone(), app.clock.clone()).await;
    fifty_concurrent_leads(&[&app, &other]).await;
}

#[tokio::test]
async fn two_crm_serve_processes_sharing_one_database_still_open_one_opportunity() {
    let database = std::sync::Arc::new(TestDatabase::create().await);
    let first = ServerProcess::start(database.clone()).await;
    let second = ServerProcess::start(database).await;
    fifty_concurrent_leads(&[&first.app, &second.app]).await;
}

#[tokio::test]
async fn the_lead_keeps_what_was_sent_including_the_vehicle() {
    let app = spawn_app().await;
    let input = json!({
        "firstName": "Marie", "lastName": "Roy", "email": "roy@example.com", "phone": "514-555-0177",
        "message": "Essai routier samedi?", "source": "portail-auto", "type": "REN",
        "vehicle": { "year": 2024, "make": "Toyota", "model": "RAV4", "trim": "XLE",
                     "vin": "2t3p1rfv8rc123456", "stockNumber": "A1234", "condition": "NEW" }
    });
    let payload = submit_lead(&app, input).await;
    let data = app
        .data(
            r#"query($id: ID!) { lead(id: $id) { type source message firstName lastName submittedEmail
                 submittedBy receivedAt vehicle { year make model trim vin stockNumber condition } } }"#,
            json!({ "id": payload["lead"]["id"] }),
            Role::Agent,
        )
        .await;
    let lead = &data["lead"];
    assert_fields(
        lead,
        json!({
            "type": "REN", "source": "portail-auto", "message": "Essai routier samedi?",
            "submittedBy": "agent-1",
            "vehicle": { "year": 2024, "make": "Toyota", "model": "RAV4", "trim": "XLE",
                         "vin": "2T3P1RFV8RC123456", "stockNumber": "A1234", "condition": "NEW" },
        }),
    );
    let received: chrono::DateTime<chrono::Utc> =
        lead["receivedAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(received, crate::helpers::t0());
}

#[tokio::test]
async fn a_due_opportunity_cannot_escape_expiry_by_moving_into_a_protected_status() {
    let app = spawn_app().await;
    let first = submit_lead(&app, json!({ "email": "late@example.com" })).await;
    // Past eight weeks, before any sweep: an agent takes it in charge.
    app.clock.advance(Duration::days(56) + Duration::minutes(2));
    set_status(&app, &id(&first), "PRIS_EN_CHARGE", Role::Agent).await;
    let data = app
        .query_opportunity(&id(&first), "status", Role::Admin)
        .await;
    assert_eq!(data["opportunity"]["status"], "PRIS_EN_CHARGE");
    expired_and_replaced_by_the_next_lead(&app, &id(&first), "late@example.com").await;
}

/// A known client: simultaneous leads that share no contact key (email only,
/// phone only) still serialize on the client and merge into one opportunity.
#[tokio::test]
async fn concurrent_leads_by_email_or_by_phone_for_a_known_client_merge_into_one_opportunity() {
    let app = spawn_app().await;
    let first = submit_lead(
        &app,
        json!({ "email": "known@example.com", "phone": "514 555 0150" }),
    )
    .await;
    app.clock.advance(Duration::days(57));
    let inputs = (0..30)
        .map(|i| {
            if i % 2 == 0 {
                json!({ "email": "known@example.com" })
            } else {
                json!({ "phone": "5145550150" })
            }
        })
        .collect();
    let opportunities: std::collections::HashSet<String> = submit_concurrently(&[&app], inputs)
        .await
        .iter()
        .map(|p| p["opportunity"]["id"].as_str().unwrap().to_owned())
        .collect();
    // The first opportunity expired at the first of these leads; exactly one new one took them all.
    assert_eq!(opportunities.len(), 1);
    assert!(!opportunities.contains(&id(&first)));
    assert_eq!(app.count("opportunity").await, 2);
    assert_eq!(app.count("lead").await, 31);
}

#[tokio::test]
async fn simultaneous_retries_with_one_idempotency_key_store_one_lead() {
    let app = spawn_app().await;
    let input = json!({ "email": "retry@example.com", "idempotencyKey": "k-1" });
    let leads: std::collections::HashSet<String> = submit_concurrently(&[&app], vec![input; 10])
        .await
        .iter()
        .map(|p| p["lead"]["id"].to_string())
        .collect();
    assert_eq!(leads.len(), 1);
    assert_eq!(app.count("lead").await, 1);
}
