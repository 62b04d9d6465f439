//! The wall around admin-only fields (`Opportunity.expiree`,
//! `Opportunity.expiredAt`, `Lead.decision`, `Query.previewLead`) and the
//! `LeadDecision` type.
//!
//! `#[graphql(visible = ...)]` only hides them from introspection: async-graphql
//! still validates a query that names them. For a non-admin this extension
//! renames every such reference in the parsed document to a name no schema
//! can hold (it ends in `#`, which GraphQL syntax forbids), so async-graphql's
//! own validator rejects it exactly as it rejects any unknown field, with all
//! its follow-on errors; the marker is then taken out of the messages.
//! Suggestions are off schema-wide. Resolvers keep `RoleGuard::admin()` as a
//! second wall.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet, Type,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{
    Name, Pos, Positioned, ServerError, ServerResult, ValidationResult, Variables,
};

use crate::auth::Principal;

/// (type, field) pairs only ADMIN may name.
pub const ADMIN_ONLY_FIELDS: &[(&str, &str)] = &[
    ("Opportunity", "expiree"),
    ("Opportunity", "expiredAt"),
    ("Lead", "decision"),
    ("Query", "previewLead"),
];

/// (enum, value) pairs only ADMIN may see. Output-only enums: no argument
/// takes them, so a document cannot name them; introspection hides them
/// (`visible`) and the non-admin SDL drops them.
pub const ADMIN_ONLY_ENUM_VALUES: &[(&str, &str)] = &[("OpportunityChange", "EXPIRED")];

/// Types reachable only through admin-only fields.
pub const ADMIN_ONLY_TYPES: &[&str] = &["LeadDecision"];

/// Appended to hidden names: `#` cannot appear in a GraphQL name, so the
/// renamed reference matches nothing and no client can write it.
const UNKNOWN_MARK: &str = "#";

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

/// Per request: where hidden names were renamed, and the alias-limit error.
#[derive(Default)]
struct AdminOnlyWallExtension {
    state: Mutex<WallState>,
}

#[derive(Default)]
struct WallState {
    renamed_at: HashSet<Pos>,
    too_many_aliases: Option<ServerError>,
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
        let mut document = next.run(ctx, query, variables).await?;
        let admin = ctx.data_opt::<Principal>().is_some_and(Principal::is_admin);
        let mut renamed_at = HashSet::new();
        if !admin {
            hide_admin_only(&ctx.schema_env.registry, &mut document, &mut renamed_at);
        }
        let too_many_aliases = too_many_aliases(&document);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = WallState {
            renamed_at,
            too_many_aliases,
        };
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let state = std::mem::take(&mut *self.state.lock().unwrap_or_else(|e| e.into_inner()));
        let result = next.run(ctx).await;
        let mut errors = match (result, state.too_many_aliases) {
            (Ok(ok), None) => return Ok(ok),
            (Ok(_), Some(error)) => vec![error],
            (Err(errors), extra) => errors.into_iter().chain(extra).collect(),
        };
        // Only errors about a renamed reference name it; text the caller
        // typed elsewhere (a string that happens to end in `#`) stays as is.
        for error in &mut errors {
            if error.locations.iter().any(|p| state.renamed_at.contains(p)) {
                error.message = unmark(&error.message);
            }
        }
        Err(errors)
    }
}

fn unmark(message: &str) -> String {
    let names = ADMIN_ONLY_FIELDS
        .iter()
        .map(|(_, f)| *f)
        .chain(ADMIN_ONLY_TYPES.iter().copied());
    let mut message = message.to_owned();
    for name in names {
        message = message.replace(&format!("\"{name}{UNKNOWN_MARK}\""), &format!("\"{name}\""));
    }
    message
}

/// Rename every reference to an admin-only field or type, recording where.
///
/// Types are tracked as the validator tracks them: below a field it does not
/// know (or a renamed one) the type is unknown, and an inline fragment's
/// condition makes it known again.
fn hide_admin_only(
    registry: &Registry,
    document: &mut ExecutableDocument,
    renamed_at: &mut HashSet<Pos>,
) {
    let operations: Vec<&mut Positioned<_>> = match &mut document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values_mut().collect(),
    };
    for operation in operations {
        let root = match operation.node.ty {
            OperationType::Query => Some(registry.query_type.clone()),
            OperationType::Mutation => registry.mutation_type.clone(),
            OperationType::Subscription => registry.subscription_type.clone(),
        };
        for variable in &mut operation.node.variable_definitions {
            let var_type = &mut variable.node.var_type;
            if hide_in_type(&mut var_type.node) {
                renamed_at.extend([variable.pos, var_type.pos]);
            }
        }
        let mut walker = Walker {
            registry,
            renamed_at,
        };
        walker.selections(root.as_deref(), &mut operation.node.selection_set.node);
    }
    for fragment in document.fragments.values_mut() {
        let on = &mut fragment.node.type_condition.node.on;
        let type_name = if ADMIN_ONLY_TYPES.contains(&on.node.as_str()) {
            on.node = hidden(on.node.as_str());
            renamed_at.insert(on.pos);
            renamed_at.insert(fragment.pos);
            None
        } else {
            Some(on.node.to_string())
        };
        let mut walker = Walker {
            registry,
            renamed_at,
        };
        walker.selections(type_name.as_deref(), &mut fragment.node.selection_set.node);
    }
}

/// Rename an admin-only type inside a variable's type (`[LeadDecision!]`).
fn hide_in_type(ty: &mut Type) -> bool {
    match &mut ty.base {
        BaseType::Named(name) if ADMIN_ONLY_TYPES.contains(&name.as_str()) => {
            *name = hidden(name.as_str());
            true
        }
        BaseType::Named(_) => false,
        BaseType::List(inner) => hide_in_type(inner),
    }
}

fn hidden(name: &str) -> Name {
    Name::new(format!("{name}{UNKNOWN_MARK}"))
}

struct Walker<'a> {
    registry: &'a Registry,
    renamed_at: &'a mut HashSet<Pos>,
}

impl Walker<'_> {
    /// `type_name` is None where the validator does not know the type.
    fn selections(&mut self, type_name: Option<&str>, set: &mut SelectionSet) {
        for selection in &mut set.items {
            match &mut selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.to_string();
                    let inner = match type_name {
                        Some(t) if is_admin_only_field(t, &name) => {
                            field.node.name.node = hidden(&name);
                            self.renamed_at.extend([field.pos, field.node.name.pos]);
                            None
                        }
                        Some(t) => self
                            .registry
                            .types
                            .get(t)
                            .and_then(|meta| meta.field_by_name(&name))
                            .map(|f| MetaTypeName::concrete_typename(&f.ty).to_owned()),
                        None => None,
                    };
                    self.selections(inner.as_deref(), &mut field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    let inner = match fragment.node.type_condition.as_mut() {
                        Some(condition) => {
                            let on = &mut condition.node.on;
                            if ADMIN_ONLY_TYPES.contains(&on.node.as_str()) {
                                on.node = hidden(on.node.as_str());
                                self.renamed_at
                                    .extend([on.pos, condition.pos, selection.pos]);
                                None
                            } else {
                                Some(on.node.to_string())
                            }
                        }
                        None => type_name.map(str::to_owned),
                    };
                    self.selections(inner.as_deref(), &mut fragment.node.selection_set.node);
                }
                // Named fragments are walked once, from their own type condition.
                Selection::FragmentSpread(_) => {}
            }
        }
    }
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
            let enum_value = ADMIN_ONLY_ENUM_VALUES
                .iter()
                .any(|(t, v)| t == type_name && *v == field);
            if is_admin_only_field(type_name, field) || enum_value {
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
