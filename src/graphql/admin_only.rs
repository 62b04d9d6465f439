//! The wall around admin-only fields (`Opportunity.expiree`,
//! `Opportunity.expiredAt`, `Lead.decision`, `Query.previewLead`) and the
//! `LeadDecision` type.
//!
//! `#[graphql(visible = ...)]` only hides them from introspection: async-graphql
//! still validates a query that names them. For a non-admin this extension
//! rejects such a query during validation with exactly the error an unknown
//! field gets (`Unknown field "x" on type "T".`, no suggestion), so nothing
//! tells the field exists. Resolvers keep their `RoleGuard::admin()` as a
//! second wall.
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Positioned, ServerError, ServerResult, ValidationResult, Variables};

use crate::auth::Principal;

/// (type, field) pairs only ADMIN may name.
pub const ADMIN_ONLY_FIELDS: &[(&str, &str)] = &[
    ("Opportunity", "expiree"),
    ("Opportunity", "expiredAt"),
    ("Lead", "decision"),
    ("Query", "previewLead"),
];

/// Types reachable only through admin-only fields.
pub const ADMIN_ONLY_TYPES: &[&str] = &["LeadDecision"];

fn is_admin_only_field(type_name: &str, field: &str) -> bool {
    ADMIN_ONLY_FIELDS
        .iter()
        .any(|(t, f)| *t == type_name && *f == field)
}

pub struct AdminOnlyWall;

impl ExtensionFactory for AdminOnlyWall {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AdminOnlyWallExtension::default())
    }
}

/// Per request: errors found at parse time, merged into validation's.
#[derive(Default)]
struct AdminOnlyWallExtension {
    found: Mutex<Vec<ServerError>>,
}

#[async_trait::async_trait]
impl Extension for AdminOnlyWallExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let admin = ctx.data_opt::<Principal>().is_some_and(Principal::is_admin);
        let mut found = if admin {
            Vec::new()
        } else {
            hidden_references(&ctx.schema_env.registry, &document)
        };
        found.extend(too_many_aliases(&document));
        *self.found.lock().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let found = std::mem::take(&mut *self.found.lock().unwrap_or_else(|e| e.into_inner()));
        let result = next.run(ctx).await;
        if found.is_empty() {
            return result;
        }
        let mut errors = result.err().unwrap_or_default();
        errors.extend(found);
        errors.sort_by_key(|e| e.locations.first().map(|p| (p.line, p.column)));
        Err(errors)
    }
}

/// Every place the document names an admin-only field or type.
fn hidden_references(registry: &Registry, document: &ExecutableDocument) -> Vec<ServerError> {
    let mut errors = Vec::new();
    for (_, operation) in document.operations.iter() {
        let root = match operation.node.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        if let Some(root) = root {
            walk(registry, root, &operation.node.selection_set, &mut errors);
        }
    }
    for (_, fragment) in document.fragments.iter() {
        let on = &fragment.node.type_condition.node.on;
        if ADMIN_ONLY_TYPES.contains(&on.node.as_str()) {
            errors.push(unknown_type(on.node.as_str(), on.pos));
        } else {
            walk(
                registry,
                on.node.as_str(),
                &fragment.node.selection_set,
                &mut errors,
            );
        }
    }
    errors
}

fn walk(
    registry: &Registry,
    type_name: &str,
    selection_set: &Positioned<SelectionSet>,
    errors: &mut Vec<ServerError>,
) {
    for selection in &selection_set.node.items {
        match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                if is_admin_only_field(type_name, name) {
                    errors.push(ServerError::new(
                        format!("Unknown field \"{name}\" on type \"{type_name}\"."),
                        Some(field.pos),
                    ));
                    continue;
                }
                if let Some(meta) = registry
                    .types
                    .get(type_name)
                    .and_then(|t| t.field_by_name(name))
                {
                    let inner = MetaTypeName::concrete_typename(&meta.ty);
                    walk(registry, inner, &field.node.selection_set, errors);
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment.node.type_condition.as_ref().map(|c| &c.node.on);
                match on {
                    Some(on) if ADMIN_ONLY_TYPES.contains(&on.node.as_str()) => {
                        errors.push(unknown_type(on.node.as_str(), on.pos));
                    }
                    _ => {
                        let inner = on.map_or(type_name, |on| on.node.as_str());
                        walk(registry, inner, &fragment.node.selection_set, errors);
                    }
                }
            }
            // Named fragments are walked once, from their own type condition.
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn unknown_type(name: &str, pos: async_graphql::Pos) -> ServerError {
    ServerError::new(format!("Unknown type \"{name}\""), Some(pos))
}

/// Aliases multiply the work of one query; more than [`super::MAX_ALIASES`]
/// is refused.
fn too_many_aliases(document: &ExecutableDocument) -> Option<ServerError> {
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => count(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let total: usize = document
        .operations
        .iter()
        .map(|(_, op)| count(&op.node.selection_set.node))
        .chain(
            document
                .fragments
                .values()
                .map(|f| count(&f.node.selection_set.node)),
        )
        .sum();
    (total > super::MAX_ALIASES).then(|| {
        ServerError::new(
            format!(
                "Query has too many aliases ({total}, at most {}).",
                super::MAX_ALIASES
            ),
            None,
        )
    })
}

/// Remove admin-only fields and types from an SDL export (the non-admin view
/// printed by `crm schema --role AGENT`).
pub fn strip_from_sdl(sdl: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut current_type: Option<String> = None;
    let mut skipping_type = false;
    let mut pending_description: Vec<&str> = Vec::new();
    let mut in_description = false;
    for line in sdl.lines() {
        let trimmed = line.trim();
        // Collect description blocks until we know what they describe.
        if in_description {
            pending_description.push(line);
            if trimmed == "\"\"\"" || (trimmed.ends_with("\"\"\"") && trimmed.len() > 3) {
                in_description = false;
            }
            continue;
        }
        if trimmed.starts_with("\"\"\"") {
            pending_description.push(line);
            in_description = !(trimmed.len() > 3 && trimmed.ends_with("\"\"\""));
            continue;
        }
        if trimmed.starts_with('"') {
            pending_description.push(line);
            continue;
        }
        if skipping_type {
            if trimmed == "}" {
                skipping_type = false;
            }
            pending_description.clear();
            continue;
        }
        let mut words = trimmed.split_whitespace();
        let first = words.next().unwrap_or_default();
        if matches!(
            first,
            "type" | "input" | "enum" | "interface" | "union" | "scalar"
        ) {
            let name = words
                .next()
                .unwrap_or_default()
                .trim_end_matches('{')
                .to_owned();
            if ADMIN_ONLY_TYPES.contains(&name.as_str()) {
                skipping_type = trimmed.ends_with('{');
                pending_description.clear();
                continue;
            }
            current_type = Some(name);
        } else if trimmed == "}" {
            current_type = None;
        } else if let Some(type_name) = &current_type {
            let field = trimmed.split([':', '(']).next().unwrap_or_default();
            if is_admin_only_field(type_name, field) {
                pending_description.clear();
                continue;
            }
        }
        out.append(&mut pending_description);
        out.push(line);
    }
    let mut text = out.join("\n");
    // Removing a type leaves a double blank line behind.
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.push('\n');
    text
}
