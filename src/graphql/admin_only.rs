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
//!
//! The same wall hides from partners what a partner's answer to a lead must
//! not tell ([`STAFF_ONLY_FIELDS`]: the outcome, the opportunity, the client),
//! so that answer has one shape whether the lead merged or opened an
//! opportunity.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use std::any::TypeId;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    BaseType, Directive, DocumentOperations, ExecutableDocument, OperationType, Selection,
    SelectionSet, Type,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{
    Name, Pos, Positioned, Request, ServerError, ServerResult, ValidationResult, Variables,
};
use async_graphql_value::{ConstValue, Value};

use crate::auth::{Principal, Role};

/// (type, field) pairs only ADMIN may name.
pub const ADMIN_ONLY_FIELDS: &[(&str, &str)] = &[
    ("Opportunity", "expiree"),
    ("Opportunity", "expiredAt"),
    ("Lead", "decision"),
    ("Query", "previewLead"),
    // An input field: renamed wherever an object value names it (see
    // `hide_input_fields`).
    ("OpportunityFilter", "expiree"),
];

/// Input fields only ADMIN may name (also in [`ADMIN_ONLY_FIELDS`], which
/// hides them from the SDL). Every object value, in the document or in the
/// variables, has such keys renamed for anyone else, so async-graphql
/// refuses them exactly as it refuses an unknown input field. No other input
/// type has a field of these names, and no input takes free-form JSON.
pub const ADMIN_ONLY_INPUT_FIELDS: &[&str] = &["expiree"];

/// (enum, value) pairs only ADMIN may see. Output-only enums: no argument
/// takes them, so a document cannot name them; introspection hides them
/// (`visible`) and the non-admin SDL drops them.
pub const ADMIN_ONLY_ENUM_VALUES: &[(&str, &str)] = &[("OpportunityChange", "EXPIRED")];

/// Types reachable only through admin-only fields.
pub const ADMIN_ONLY_TYPES: &[&str] = &["LeadDecision"];

/// (type, field) pairs hidden from PARTNER too: what became of a lead in the
/// CRM is not the partner's to know.
pub const STAFF_ONLY_FIELDS: &[(&str, &str)] = &[
    ("SubmitLeadPayload", "outcome"),
    ("SubmitLeadPayload", "opportunity"),
    ("SubmitLeadPayload", "client"),
    ("Lead", "outcome"),
    ("Lead", "opportunity"),
    ("Lead", "client"),
    ("Lead", "contactConflict"),
    ("Lead", "creditRequest"),
];

/// Types reachable only through staff-only (or admin-only) fields.
pub const STAFF_ONLY_TYPES: &[&str] = &["ContactConflict", "LeadOutcome"];

/// Appended to hidden names: `#` cannot appear in a GraphQL name, so the
/// renamed reference matches nothing and no client can write it.
const UNKNOWN_MARK: &str = "#";

/// The (type, field) pairs `role` may not name.
fn hidden_fields(role: Role) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    let (admin_only, staff_only): (&[_], &[_]) = match role {
        Role::Admin => (&[], &[]),
        Role::Agent => (ADMIN_ONLY_FIELDS, &[]),
        Role::Partner => (ADMIN_ONLY_FIELDS, STAFF_ONLY_FIELDS),
    };
    admin_only.iter().chain(staff_only)
}

/// The types `role` may not name.
fn hidden_types(role: Role) -> impl Iterator<Item = &'static str> {
    let (admin_only, staff_only): (&[_], &[_]) = match role {
        Role::Admin => (&[], &[]),
        Role::Agent => (ADMIN_ONLY_TYPES, &[]),
        Role::Partner => (ADMIN_ONLY_TYPES, STAFF_ONLY_TYPES),
    };
    admin_only.iter().chain(staff_only).copied()
}

pub(crate) fn is_hidden_field(role: Role, type_name: &str, field: &str) -> bool {
    hidden_fields(role).any(|(t, f)| *t == type_name && *f == field)
}

pub(crate) fn is_hidden_type(role: Role, name: &str) -> bool {
    hidden_types(role).any(|t| t == name)
}

/// The role a request runs as: its principal's, or with none the narrowest
/// view (PARTNER).
pub(crate) fn role_of(request: &Request, ctx: &ExtensionContext<'_>) -> Role {
    request
        .data
        .get(&TypeId::of::<Principal>())
        .and_then(|d| d.downcast_ref::<Principal>())
        .or_else(|| ctx.data_opt::<Principal>())
        .map_or(Role::Partner, |p| p.role)
}

pub struct AdminOnlyWall;

impl ExtensionFactory for AdminOnlyWall {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AdminOnlyWallExtension::default())
    }
}

/// Per request: where hidden names were renamed.
#[derive(Default)]
struct AdminOnlyWallExtension {
    renamed_at: Mutex<HashSet<Pos>>,
    /// Variables whose value had an admin-only input field renamed.
    renamed_variables: Mutex<HashSet<String>>,
}

#[async_trait::async_trait]
impl Extension for AdminOnlyWallExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if role_of(&request, ctx) != Role::Admin {
            let mut renamed = HashSet::new();
            for (name, value) in request.variables.iter_mut() {
                if hide_input_keys(value) {
                    renamed.insert(name.to_string());
                }
            }
            *self
                .renamed_variables
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = renamed;
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let mut document = next.run(ctx, query, variables).await?;
        // No principal: the narrowest view.
        let role = ctx
            .data_opt::<Principal>()
            .map_or(Role::Partner, |p| p.role);
        let mut renamed_at = HashSet::new();
        if role != Role::Admin {
            hide(
                role,
                &ctx.schema_env.registry,
                &mut document,
                &mut renamed_at,
            );
            let renamed_variables = std::mem::take(
                &mut *self
                    .renamed_variables
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            hide_input_fields(&mut document, &renamed_variables, &mut renamed_at);
        }
        *self.renamed_at.lock().unwrap_or_else(|e| e.into_inner()) = renamed_at;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let renamed_at =
            std::mem::take(&mut *self.renamed_at.lock().unwrap_or_else(|e| e.into_inner()));
        let mut errors = match next.run(ctx).await {
            Ok(ok) => return Ok(ok),
            Err(errors) => errors,
        };
        // Only errors about a renamed reference name it; text the caller
        // typed elsewhere (a string that happens to end in `#`) stays as is.
        for error in &mut errors {
            if error.locations.iter().any(|p| renamed_at.contains(p)) {
                error.message = unmark(&error.message);
            }
        }
        Err(errors)
    }
}

/// A value as a variable carries it ([`ConstValue`]) or as a document
/// writes it ([`Value`]): admin-only input keys are renamed alike in both.
trait InputValue: Sized {
    fn object(&mut self) -> Option<&mut IndexMap<Name, Self>>;
    fn list(&mut self) -> Option<&mut Vec<Self>>;
}

macro_rules! input_value {
    ($($value:ident),*) => {$(
        impl InputValue for $value {
            fn object(&mut self) -> Option<&mut IndexMap<Name, Self>> {
                match self {
                    Self::Object(map) => Some(map),
                    _ => None,
                }
            }

            fn list(&mut self) -> Option<&mut Vec<Self>> {
                match self {
                    Self::List(items) => Some(items),
                    _ => None,
                }
            }
        }
    )*};
}

input_value!(ConstValue, Value);

/// Rename admin-only input keys in a value, at any depth; true if any was.
fn hide_input_keys<V: InputValue>(value: &mut V) -> bool {
    if let Some(map) = value.object() {
        let mut renamed = false;
        for (key, mut inner) in std::mem::take(map) {
            renamed |= hide_input_keys(&mut inner);
            if ADMIN_ONLY_INPUT_FIELDS.contains(&key.as_str()) {
                map.insert(hidden(key.as_str()), inner);
                renamed = true;
            } else {
                map.insert(key, inner);
            }
        }
        return renamed;
    }
    value.list().is_some_and(|items| {
        items
            .iter_mut()
            .fold(false, |acc, item| hide_input_keys(item) | acc)
    })
}

fn uses_any(value: &Value, variables: &HashSet<String>) -> bool {
    match value {
        Value::Variable(name) => variables.contains(name.as_str()),
        Value::Object(map) => map.values().any(|v| uses_any(v, variables)),
        Value::List(items) => items.iter().any(|v| uses_any(v, variables)),
        _ => false,
    }
}

/// Rename admin-only input fields in every argument and variable default of
/// the document, and record where the validator will report them: at an
/// argument holding one, or using a variable whose value held one.
fn hide_input_fields(
    document: &mut ExecutableDocument,
    renamed_variables: &HashSet<String>,
    renamed_at: &mut HashSet<Pos>,
) {
    let mut renamer = InputRenamer {
        renamed_variables,
        renamed_at,
    };
    let operations: Vec<&mut Positioned<_>> = match &mut document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values_mut().collect(),
    };
    for operation in operations {
        for variable in &mut operation.node.variable_definitions {
            if let Some(default) = variable.node.default_value.as_mut()
                && hide_input_keys(&mut default.node)
            {
                renamer.renamed_at.extend([variable.pos, default.pos]);
            }
        }
        renamer.directives(&mut operation.node.directives);
        renamer.selections(&mut operation.node.selection_set.node);
    }
    for fragment in document.fragments.values_mut() {
        renamer.directives(&mut fragment.node.directives);
        renamer.selections(&mut fragment.node.selection_set.node);
    }
}

/// The walk of [`hide_input_fields`] through arguments, directives and
/// selections.
struct InputRenamer<'a> {
    /// Variables whose value had an admin-only input field renamed.
    renamed_variables: &'a HashSet<String>,
    renamed_at: &'a mut HashSet<Pos>,
}

impl InputRenamer<'_> {
    fn arguments(&mut self, args: &mut [(Positioned<Name>, Positioned<Value>)]) {
        for (name, value) in args {
            if hide_input_keys(&mut value.node) | uses_any(&value.node, self.renamed_variables) {
                self.renamed_at.extend([name.pos, value.pos]);
            }
        }
    }

    fn directives(&mut self, list: &mut [Positioned<Directive>]) {
        for directive in list {
            self.arguments(&mut directive.node.arguments);
        }
    }

    fn selections(&mut self, set: &mut SelectionSet) {
        for selection in &mut set.items {
            match &mut selection.node {
                Selection::Field(field) => {
                    self.arguments(&mut field.node.arguments);
                    self.directives(&mut field.node.directives);
                    self.selections(&mut field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    self.directives(&mut fragment.node.directives);
                    self.selections(&mut fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&mut spread.node.directives);
                }
            }
        }
    }
}

fn unmark(message: &str) -> String {
    let names = hidden_fields(Role::Partner)
        .map(|(_, f)| *f)
        .chain(hidden_types(Role::Partner));
    let mut message = message.to_owned();
    for name in names {
        message = message.replace(&format!("\"{name}{UNKNOWN_MARK}\""), &format!("\"{name}\""));
    }
    message
}

/// Rename every reference to a field or type hidden from `role`, recording
/// where.
///
/// Types are tracked as the validator tracks them: below a field it does not
/// know (or a renamed one) the type is unknown, and an inline fragment's
/// condition makes it known again.
fn hide(
    role: Role,
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
            if hide_in_type(role, &mut var_type.node) {
                renamed_at.extend([variable.pos, var_type.pos]);
            }
        }
        let mut walker = Walker {
            role,
            registry,
            renamed_at,
        };
        walker.selections(root.as_deref(), &mut operation.node.selection_set.node);
    }
    for fragment in document.fragments.values_mut() {
        let on = &mut fragment.node.type_condition.node.on;
        let type_name = if is_hidden_type(role, on.node.as_str()) {
            on.node = hidden(on.node.as_str());
            renamed_at.insert(on.pos);
            renamed_at.insert(fragment.pos);
            None
        } else {
            Some(on.node.to_string())
        };
        let mut walker = Walker {
            role,
            registry,
            renamed_at,
        };
        walker.selections(type_name.as_deref(), &mut fragment.node.selection_set.node);
    }
}

/// Rename a hidden type inside a variable's type (`[LeadDecision!]`).
fn hide_in_type(role: Role, ty: &mut Type) -> bool {
    match &mut ty.base {
        BaseType::Named(name) if is_hidden_type(role, name.as_str()) => {
            *name = hidden(name.as_str());
            true
        }
        BaseType::Named(_) => false,
        BaseType::List(inner) => hide_in_type(role, inner),
    }
}

fn hidden(name: &str) -> Name {
    Name::new(format!("{name}{UNKNOWN_MARK}"))
}

struct Walker<'a> {
    role: Role,
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
                        Some(t) if is_hidden_field(self.role, t, &name) => {
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
                            if is_hidden_type(self.role, on.node.as_str()) {
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

/// Remove the fields and types hidden from `role` from an SDL export (what
/// `crm schema --role AGENT` prints).
pub fn strip_from_sdl(sdl: &str, role: Role) -> String {
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
            if is_hidden_type(role, &name) {
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
            if is_hidden_field(role, type_name, field) || enum_value {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use async_graphql::Request;

    const INTROSPECTION: &str = "{ __schema { types { name \
        fields(includeDeprecated: true) { name } \
        inputFields { name } \
        enumValues(includeDeprecated: true) { name } } } }";

    /// (types, (type, field, input field or enum value) pairs) that introspection shows
    /// `role`: what the registry's `visible` marks let through.
    async fn visible_to(role: Role) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
        let principal = Principal {
            sub: "wall-test".into(),
            role,
            issued_at: 0,
            expires_at: i64::MAX,
        };
        let response = crate::graphql::sdl_schema()
            .execute(Request::new(INTROSPECTION).data(principal))
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("introspection is JSON");
        let mut types = BTreeSet::new();
        let mut members = BTreeSet::new();
        for ty in data["__schema"]["types"].as_array().expect("types") {
            let name = ty["name"].as_str().expect("type name").to_owned();
            for list in ["fields", "inputFields", "enumValues"] {
                for member in ty[list].as_array().into_iter().flatten() {
                    let member = member["name"].as_str().expect("name").to_owned();
                    members.insert((name.clone(), member));
                }
            }
            types.insert(name);
        }
        (types, members)
    }

    #[tokio::test]
    async fn the_walls_lists_are_exactly_what_the_visible_marks_hide() {
        let (admin_types, admin_members) = visible_to(Role::Admin).await;
        for role in [Role::Agent, Role::Partner] {
            let (types, members) = visible_to(role).await;
            let hidden_types: BTreeSet<String> = admin_types.difference(&types).cloned().collect();
            let listed_types: BTreeSet<String> =
                super::hidden_types(role).map(str::to_owned).collect();
            assert_eq!(hidden_types, listed_types, "hidden types for {role:?}");

            let hidden_members: BTreeSet<(String, String)> = admin_members
                .difference(&members)
                .filter(|(t, _)| types.contains(t))
                .cloned()
                .collect();
            let listed_members: BTreeSet<(String, String)> = super::hidden_fields(role)
                .chain(ADMIN_ONLY_ENUM_VALUES)
                .map(|(t, f)| ((*t).to_owned(), (*f).to_owned()))
                .collect();
            assert_eq!(hidden_members, listed_members, "hidden fields for {role:?}");
        }
    }
}
