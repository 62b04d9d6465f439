use crm::auth::Role;
use crm::graphql::sdl_for;

use crate::crm_process::Crm;

#[test]
fn the_checked_in_schema_is_the_servers_admin_sdl() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).expect("schema.graphql at the root");
    assert!(
        checked_in == sdl_for(Role::Admin),
        "schema.graphql drifted from the code: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn the_agent_schema_has_no_admin_only_part_and_still_parses() {
    for role in [Role::Agent, Role::Partner] {
        let sdl = sdl_for(role);
        for hidden in [
            "expiree",
            "expiredAt",
            "decision:",
            "previewLead",
            "LeadDecision",
        ] {
            assert!(!sdl.contains(hidden), "{role:?} SDL names {hidden}");
        }
        assert!(sdl.contains("type Opportunity"));
        async_graphql::parser::parse_schema(&sdl).expect("agent SDL parses");
    }
    let admin = sdl_for(Role::Admin);
    assert!(admin.contains("expiree: Boolean!") && admin.contains("expiredAt: DateTime"));
}

#[tokio::test]
async fn crm_schema_role_agent_prints_the_agent_view() {
    let text = Crm::new()
        .args(["schema", "--role", "agent"])
        .stdout()
        .await;
    assert_eq!(text, sdl_for(Role::Agent));
}
