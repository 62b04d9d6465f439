//! `POST /leads/adf`: ADF 1.0 documents taken in by the `submitLead` path.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, adf_fixture, assert_fields, spawn_app};
use crm::auth::Role;

const LEAD: &str = r#"query($id: ID!) { lead(id: $id) {
  type source firstName lastName email phone message idempotencyKey submittedBy
  vehicle { year make model trim vin stockNumber condition }
  warnings { field message }
  client { id firstName lastName }
  opportunity { id }
} }"#;

async fn lead(app: &TestApp, id: &str) -> Value {
    app.data(LEAD, json!({ "id": id }), Role::Agent).await["lead"].clone()
}

/// Post a fixture as an agent, expecting 201; returns the answer's body.
async fn land(app: &TestApp, fixture: &str) -> Value {
    let answer = app.post_adf(&adf_fixture(fixture), Role::Agent).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{fixture}: {}",
        answer.body
    );
    answer.body
}

#[tokio::test]
async fn every_fixture_lands_as_a_lead_with_the_expected_client_and_outcome() {
    let app = spawn_app().await;

    let minimal = land(&app, "minimal.xml").await;
    assert_eq!(minimal["outcome"], "NEW_OPPORTUNITY");
    let l = lead(&app, minimal["leadId"].as_str().unwrap()).await;
    assert_eq!(l["client"]["firstName"], "Luc");
    assert_eq!(l["client"]["lastName"], "Gagnon");
    assert_eq!(l["phone"], "+15145550101");
    assert_eq!(l["type"], "LEAD");
    assert_eq!(l["vehicle"]["model"], "Civic");
    assert_eq!(l["opportunity"]["id"], minimal["opportunityId"]);

    let full = land(&app, "full.xml").await;
    assert_eq!(full["outcome"], "NEW_OPPORTUNITY");
    let l = lead(&app, full["leadId"].as_str().unwrap()).await;
    assert_fields(
        &l,
        json!({
            "firstName": "Marie-Ève", "lastName": "Tremblay",
            "email": "marie-eve.tremblay@example.com", "phone": "+15145550142",
            "source": "Toyota Canada Build & Price",
            "idempotencyKey": "adf:toyota-ca:TCI-2026-0601-00042", "submittedBy": "agent-1",
            "vehicle": { "year": 2026, "make": "Toyota", "model": "RAV4", "trim": "XLE Hybrid",
                         "vin": "2T3W1RFV5TC123456", "stockNumber": "N26-0417", "condition": "NEW" },
        }),
    );
    let message = l["message"].as_str().unwrap();
    assert!(
        message.starts_with("Trading in a 2018 Corolla"),
        "{message}"
    );
    assert!(message.ends_with("tow hitch installed."), "{message}");
    assert_eq!(l["warnings"][0]["field"], "phone", "{l}");
    let marie = l["client"]["id"].clone();

    let roy = land(&app, "full_name_only.xml").await;
    let l = lead(&app, roy["leadId"].as_str().unwrap()).await;
    assert_eq!(l["client"]["firstName"], "Jean-François");
    assert_eq!(l["client"]["lastName"], "Roy");
    assert_eq!(l["source"], "Mazda de Québec");
    assert_eq!(roy["outcome"], "NEW_OPPORTUNITY");

    let odd = land(&app, "cdata_whitespace_unknown.xml").await;
    let l = lead(&app, odd["leadId"].as_str().unwrap()).await;
    assert_fields(
        &l,
        json!({
            "firstName": "Sophie", "lastName": "Côté-Lévesque", "email": "sophie.cote@example.ca",
            "source": "Lead Mailer", "idempotencyKey": "adf:leadmailer:LM-55012",
        }),
    );
    assert_eq!(l["vehicle"]["condition"], "USED");
    assert_eq!(l["vehicle"]["year"], 2022);
    assert!(
        l["message"]
            .as_str()
            .unwrap()
            .contains("<AWD> & heated seats.\nBudget")
    );

    let several = land(&app, "several_emails_phones.xml").await;
    let l = lead(&app, several["leadId"].as_str().unwrap()).await;
    assert_eq!(l["firstName"], "Nadia");
    assert_eq!(l["email"], "nadia.bouchard@example.com");
    assert_eq!(l["phone"], "+14505550171");
    let fields: Vec<&str> = l["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "email", "phone", "phone"], "{l}");
    assert_eq!(several["warnings"].as_array().unwrap().len(), 4);

    let credit = land(&app, "finance_credit.xml").await;
    let l = lead(&app, credit["leadId"].as_str().unwrap()).await;
    assert_eq!(l["type"], "CRE");
    assert_eq!(l["phone"], "+18195550133");
    assert_eq!(l["vehicle"]["model"], "F-150");
    assert_eq!(l["vehicle"]["condition"], "USED");

    // The marketplace lead is Marie-Ève again: it joins her opportunity.
    let used = land(&app, "marketplace_used.xml").await;
    assert_eq!(used["outcome"], "MERGED");
    assert_eq!(used["opportunityId"], full["opportunityId"]);
    let l = lead(&app, used["leadId"].as_str().unwrap()).await;
    assert_eq!(l["client"]["id"], marie);
    assert_eq!(l["source"], "AutoMarket.ca");
    assert_eq!(l["vehicle"]["model"], "Corolla");
    assert_eq!(l["vehicle"]["vin"], "5YFEPMAE1MP123456");

    assert_eq!(app.count("lead").await, 7);
    assert_eq!(app.count("client").await, 6);
    assert_eq!(app.count("opportunity").await, 6);
}

#[tokio::test]
async fn a_resend_returns_the_original_lead_with_200_and_stores_nothing() {
    let app = spawn_app().await;
    let first = app.post_adf(&adf_fixture("full.xml"), Role::Partner).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    let resend = app
        .post_adf(&adf_fixture("resend_full.xml"), Role::Partner)
        .await;
    assert_eq!(resend.status, StatusCode::OK, "{}", resend.body);
    assert_eq!(resend.body["leadId"], first.body["leadId"]);
    assert_eq!(resend.body["receivedAt"], first.body["receivedAt"]);

    let again = app.post_adf(&adf_fixture("full.xml"), Role::Partner).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["leadId"], first.body["leadId"]);
    assert_eq!(app.count("lead").await, 1);
}

#[tokio::test]
async fn a_partner_learns_only_the_lead_id_its_time_and_warnings() {
    let app = spawn_app().await;
    let answer = app
        .post_adf(&adf_fixture("several_emails_phones.xml"), Role::Partner)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["leadId", "receivedAt", "warnings"],
        "{}",
        answer.body
    );
    assert_eq!(answer.body["receivedAt"], "2026-06-01T12:00:00Z");

    let staff = app.post_adf(&adf_fixture("minimal.xml"), Role::Admin).await;
    assert_eq!(staff.body["outcome"], "NEW_OPPORTUNITY");
    assert!(staff.body["opportunityId"].is_string());
}

#[tokio::test]
async fn every_hostile_document_is_refused_with_bad_user_input_and_nothing_stored() {
    let app = spawn_app().await;
    for (fixture, field) in [
        ("hostile/billion_laughs.xml", "body"),
        ("hostile/external_entity.xml", "body"),
        ("hostile/doctype_only.xml", "body"),
        ("hostile/undeclared_entity.xml", "body"),
        ("hostile/malformed.xml", "body"),
        ("hostile/not_adf.xml", "body"),
        ("hostile/no_contact.xml", "phone"),
    ] {
        for role in [Role::Partner, Role::Admin] {
            let answer = app.post_adf(&adf_fixture(fixture), role).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{fixture}: {}",
                answer.body
            );
            let error = &answer.body["errors"][0];
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{fixture}");
            assert_eq!(error["extensions"]["field"], field, "{fixture}: {error}");
            let text = answer.body.to_string();
            assert!(!text.contains("root:"), "{fixture} leaked a file: {text}");
            assert!(!text.contains("lollol"), "{fixture} expanded: {text}");
        }
    }
    assert_eq!(app.count("lead").await, 0);
    assert_eq!(app.count("client").await, 0);
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_with_413_and_nothing_stored() {
    let app = spawn_app().await;
    let padding = "x".repeat(crm::startup::MAX_BODY_BYTES);
    let xml = adf_fixture("minimal.xml").replace(
        "<requestdate>",
        &format!("<comments>{padding}</comments><requestdate>"),
    );
    let answer = app.post_adf(&xml, Role::Partner).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.body["errors"][0]["extensions"]["code"],
        "PAYLOAD_TOO_LARGE"
    );

    // Streamed without a Content-Length: still cut at the cap.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(xml.clone().into_bytes()[..1000].to_vec()),
        Ok(xml.into_bytes()[1000..].to_vec()),
    ];
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let token = app.token(Role::Partner);
    let answer = app
        .post_adf_raw(stream, "application/xml", Some(&token))
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("lead").await, 0);
}

#[tokio::test]
async fn only_xml_content_types_are_accepted() {
    let app = spawn_app().await;
    let token = app.token(Role::Partner);
    let xml = adf_fixture("minimal.xml");
    for content_type in [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        let answer = app
            .post_adf_raw(xml.clone(), content_type, Some(&token))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        assert_eq!(
            answer.body["errors"][0]["extensions"]["code"],
            "BAD_USER_INPUT"
        );
    }
    let answer = app
        .post_adf_raw(xml.clone(), "text/xml; charset=UTF-8", Some(&token))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(app.count("lead").await, 1);
}

#[tokio::test]
async fn an_adf_post_without_a_valid_token_is_unauthenticated() {
    let app = spawn_app().await;
    let xml = adf_fixture("minimal.xml");
    for token in [None, Some("not-a-jwt")] {
        let answer = app
            .post_adf_raw(xml.clone(), "application/xml", token)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            answer.body["errors"][0]["extensions"]["code"],
            "UNAUTHENTICATED"
        );
    }
    assert_eq!(app.count("lead").await, 0);
}

#[tokio::test]
async fn a_partner_reads_back_only_its_own_leads_and_only_their_partner_fields() {
    let app = spawn_app().await;
    let acme = app.token_for(Role::Partner, "acme");
    let other = app.token_for(Role::Partner, "other");
    let mine = app
        .post_adf_raw(adf_fixture("full.xml"), "application/xml", Some(&acme))
        .await;
    app.post_adf_raw(adf_fixture("minimal.xml"), "application/xml", Some(&other))
        .await;

    let body = app
        .post_as(
            "{ leads { totalCount edges { node { id receivedAt source warnings { field } } } } }",
            json!({}),
            &acme,
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let leads = &body["data"]["leads"];
    assert_eq!(leads["totalCount"], 1);
    assert_eq!(leads["edges"][0]["node"]["id"], mine.body["leadId"]);
    assert_eq!(
        leads["edges"][0]["node"]["source"],
        "Toyota Canada Build & Price"
    );

    let body = app
        .post_as(
            "{ leads { edges { node { client { id } } } } }",
            json!({}),
            &acme,
        )
        .await;
    // Hidden from partners like any unknown field (SPEC 3).
    assert_eq!(
        crate::helpers::error_code(&body),
        "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
}
