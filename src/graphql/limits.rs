//! What one GraphQL document may cost, counted before async-graphql
//! validates it.
//!
//! async-graphql's own depth and complexity visitors follow every fragment
//! spread again, so a chain of fragments that each spread the next several
//! times costs exponential time before anything is refused. This walk
//! measures each named fragment once (memoized) and adds its measure at every
//! spread, so the document is counted expanded — a fragment spread twice
//! counts twice — in time linear in its text. It weighs lists by the items
//! they may return: a connection by its `first` (default page size when
//! absent), any other list by [`LIST_WEIGHT`]; introspection by the largest
//! lists the schema actually holds, against its own budget, so the standard
//! introspection queries pass and a hand-written nest of `ofType` or
//! `fields { type { fields ... } }` does not.
//!
//! The walk also refuses NUL characters in every string a request carries
//! (literals and variables), and gives syntax errors a short message without
//! the parser's excerpt.
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{
    ErrorExtensionValues, Name, Pos, Positioned, Request, ServerError, ServerResult, Variables,
};
use async_graphql_value::{ConstValue, Value};

use super::admin_only;
use crate::auth::Role;
use crate::store::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Deepest selection path outside introspection.
pub const MAX_DEPTH: u32 = 12;
/// Deepest selection path inside `__schema` / `__type` (graphql-js's
/// standard query reaches 15 with its nine levels of `ofType`).
pub const MAX_INTROSPECTION_DEPTH: u32 = 20;
/// Largest weighted number of fields a query may resolve.
pub const MAX_COMPLEXITY: u64 = 10_000;
/// Most aliases in one document, counted expanded.
pub const MAX_ALIASES: u64 = 30;
/// Most fields and directives in one document, counted expanded: bounds
/// the work of validation itself.
pub const MAX_NODES: u64 = 2_000;
/// Weight of a list that is not a connection (emails, status history...).
pub const LIST_WEIGHT: u64 = 20;
/// Introspection may weigh this many times graphql-js's complete standard
/// introspection query.
pub const INTROSPECTION_HEADROOM: f64 = 1.25;

/// graphql-js 16's `getIntrospectionQuery()` with every option on: the
/// reference that sets the introspection budget.
const INTROSPECTION_REFERENCE: &str =
    include_str!("../../tests/fixtures/introspection/graphql-js-all-options.graphql");

/// The measure of a selection, counted expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Weighted fields outside introspection.
    pub complexity: u64,
    /// Weighted fields inside introspection.
    pub introspection: u64,
    /// Deepest path outside introspection.
    pub depth: u32,
    /// Deepest path through `__schema` / `__type`.
    pub introspection_depth: u32,
    pub aliases: u64,
    /// Fields and directives.
    pub nodes: u64,
}

impl Cost {
    /// Both parts of one selection set.
    fn and(self, other: Cost) -> Cost {
        Cost {
            complexity: self.complexity.saturating_add(other.complexity),
            introspection: self.introspection.saturating_add(other.introspection),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
            aliases: self.aliases.saturating_add(other.aliases),
            nodes: self.nodes.saturating_add(other.nodes),
        }
    }

    /// A field over `children`, returning up to `items` items.
    fn field(
        children: Cost,
        items: u64,
        introspection: bool,
        alias: bool,
        directives: u64,
    ) -> Cost {
        let (own, own_intro) = if introspection { (0, 1) } else { (1, 0) };
        let weigh = |own: u64, below: u64| items.saturating_mul(own.saturating_add(below));
        let below_depth = children.depth.max(children.introspection_depth);
        Cost {
            complexity: weigh(own, children.complexity),
            introspection: weigh(own_intro, children.introspection),
            depth: if introspection { 0 } else { 1 + children.depth },
            introspection_depth: if introspection {
                1 + below_depth
            } else if children.introspection_depth > 0 {
                1 + children.introspection_depth
            } else {
                0
            },
            aliases: children.aliases.saturating_add(u64::from(alias)),
            nodes: children.nodes.saturating_add(1 + directives),
        }
    }
}

/// The largest lists the schema holds: what an introspection list may return.
#[derive(Clone, Copy, Debug)]
struct IntrospectionBounds {
    types: u64,
    directives: u64,
    fields: u64,
    args: u64,
    enum_values: u64,
    possible_types: u64,
}

impl IntrospectionBounds {
    fn of(registry: &Registry) -> Self {
        let count = |n: usize| n as u64;
        let types = registry.types.values();
        let max = |f: &dyn Fn(&MetaType) -> usize| count(types.clone().map(f).max().unwrap_or(0));
        let field_args = registry
            .types
            .values()
            .filter_map(MetaType::fields)
            .flat_map(|fields| fields.values().map(|f| f.args.len()));
        let directive_args = registry.directives.values().map(|d| d.args.len());
        Self {
            types: count(registry.types.len()),
            directives: count(registry.directives.len()),
            fields: max(&|t| match t {
                MetaType::InputObject { input_fields, .. } => input_fields.len(),
                other => other.fields().map_or(0, |f| f.len()),
            }),
            args: count(field_args.chain(directive_args).max().unwrap_or(0)),
            enum_values: max(&|t| match t {
                MetaType::Enum { enum_values, .. } => enum_values.len(),
                _ => 0,
            }),
            possible_types: max(&|t| t.possible_types().map_or(0, |p| p.len())),
        }
    }

    /// Items an introspection list field may return.
    fn items(&self, field: &str) -> u64 {
        match field {
            "types" => self.types,
            "directives" => self.directives,
            "fields" | "inputFields" => self.fields,
            "args" => self.args,
            "enumValues" => self.enum_values,
            "interfaces" | "possibleTypes" => self.possible_types,
            // `locations` of a directive, and anything new.
            _ => LIST_WEIGHT,
        }
    }
}

/// What the schema allows a document, computed once per schema.
#[derive(Debug)]
struct Budget {
    bounds: IntrospectionBounds,
    introspection: u64,
}

impl Budget {
    fn of(registry: &Registry) -> Self {
        let bounds = IntrospectionBounds::of(registry);
        let reference = async_graphql::parser::parse_query(INTROSPECTION_REFERENCE)
            .ok()
            .and_then(|doc| {
                measure(Role::Admin, registry, &bounds, &doc, &Variables::default()).ok()
            })
            .map_or(0, |cost| cost.introspection);
        Self {
            bounds,
            introspection: (reference as f64 * INTROSPECTION_HEADROOM) as u64,
        }
    }
}

/// Refuse a document whose expanded measure is over any limit.
fn check(cost: &Cost, budget: &Budget) -> Result<(), String> {
    if cost.nodes > MAX_NODES {
        return Err(format!(
            "Query is too large ({} fields and directives counted with fragments expanded, at most {MAX_NODES}).",
            cost.nodes
        ));
    }
    if cost.aliases > MAX_ALIASES {
        return Err(format!(
            "Query has too many aliases ({}, at most {MAX_ALIASES}).",
            cost.aliases
        ));
    }
    if cost.depth > MAX_DEPTH || cost.introspection_depth > MAX_INTROSPECTION_DEPTH {
        return Err("Query is nested too deep.".into());
    }
    if cost.complexity > MAX_COMPLEXITY {
        return Err(format!(
            "Query is too complex ({}, at most {MAX_COMPLEXITY}; lists count by the items they may return: ask for fewer with `first`).",
            cost.complexity
        ));
    }
    if cost.introspection > budget.introspection {
        return Err(format!(
            "Introspection query is too complex ({}, at most {}).",
            cost.introspection, budget.introspection
        ));
    }
    Ok(())
}

/// Measure a whole document: every operation and every fragment definition
/// (validation visits definitions too), fragments expanded.
fn measure(
    role: Role,
    registry: &Registry,
    bounds: &IntrospectionBounds,
    document: &ExecutableDocument,
    variables: &Variables,
) -> Result<Cost, String> {
    let mut walk = Walk {
        role,
        registry,
        bounds,
        variables,
        fragments: &document.fragments,
        memo: HashMap::new(),
    };
    let mut total = Cost::default();
    for (_, operation) in document.operations.iter() {
        let root = match operation.node.ty {
            async_graphql::parser::types::OperationType::Query => {
                Some(registry.query_type.as_str())
            }
            async_graphql::parser::types::OperationType::Mutation => {
                registry.mutation_type.as_deref()
            }
            async_graphql::parser::types::OperationType::Subscription => {
                registry.subscription_type.as_deref()
            }
        };
        let cost = walk.selections(root, &operation.node.selection_set.node)?;
        total = total.and(cost);
    }
    // Validation also visits every definition, used or not: their size
    // counts, their aliases are not the response's.
    for name in document.fragments.keys() {
        total.nodes = total.nodes.saturating_add(walk.fragment(name)?.nodes);
    }
    Ok(total)
}

/// Fragment measures: done, or being measured (a spread cycle).
enum Memo {
    Visiting,
    Done(Cost),
}

struct Walk<'a> {
    /// Fields and types hidden from this role count as unknown ones, so a
    /// hidden field costs exactly what a misspelt one costs.
    role: Role,
    registry: &'a Registry,
    bounds: &'a IntrospectionBounds,
    variables: &'a Variables,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    memo: HashMap<&'a str, Memo>,
}

impl<'a> Walk<'a> {
    fn fragment(&mut self, name: &'a str) -> Result<Cost, String> {
        match self.memo.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::Visiting) => {
                return Err(format!("Cannot spread fragment \"{name}\" within itself."));
            }
            None => {}
        }
        // An unknown fragment is the validator's to report.
        let Some(fragment) = self.fragments.get(name) else {
            return Ok(Cost::default());
        };
        self.memo.insert(name, Memo::Visiting);
        let on = self.known_type(fragment.node.type_condition.node.on.node.as_str());
        let cost = self.selections(on, &fragment.node.selection_set.node)?;
        let directives = fragment.node.directives.len() as u64;
        let cost = cost.and(Cost {
            nodes: directives,
            ..Cost::default()
        });
        self.memo.insert(name, Memo::Done(cost));
        Ok(cost)
    }

    /// `parent` is None where the type is unknown (below an unknown field).
    fn selections(&mut self, parent: Option<&str>, set: &'a SelectionSet) -> Result<Cost, String> {
        let mut total = Cost::default();
        for selection in &set.items {
            let cost = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let (child_type, items, introspection) = self.field_shape(parent, name, field);
                    let children =
                        self.selections(child_type.as_deref(), &field.selection_set.node)?;
                    Cost::field(
                        children,
                        items,
                        introspection,
                        field.alias.is_some(),
                        field.directives.len() as u64,
                    )
                }
                Selection::InlineFragment(fragment) => {
                    let on = match &fragment.node.type_condition {
                        Some(condition) => self.known_type(condition.node.on.node.as_str()),
                        None => parent,
                    };
                    let inner = self.selections(on, &fragment.node.selection_set.node)?;
                    inner.and(Cost {
                        nodes: fragment.node.directives.len() as u64,
                        ..Cost::default()
                    })
                }
                Selection::FragmentSpread(spread) => {
                    let inner = self.fragment(spread.node.fragment_name.node.as_str())?;
                    inner.and(Cost {
                        nodes: spread.node.directives.len() as u64,
                        ..Cost::default()
                    })
                }
            };
            total = total.and(cost);
        }
        Ok(total)
    }

    /// A type condition, unless the type is hidden from this role.
    fn known_type<'n>(&self, name: &'n str) -> Option<&'n str> {
        (!admin_only::is_hidden_type(self.role, name)).then_some(name)
    }

    /// The field's type, how many items it may return, and whether it is
    /// introspection.
    fn field_shape(
        &self,
        parent: Option<&str>,
        name: &str,
        field: &async_graphql::parser::types::Field,
    ) -> (Option<String>, u64, bool) {
        let introspection =
            matches!(name, "__schema" | "__type") || parent.is_some_and(|p| p.starts_with("__"));
        let Some(meta) = parent
            .filter(|p| !admin_only::is_hidden_field(self.role, p, name))
            .and_then(|p| self.registry.types.get(p))
            .and_then(|t| t.field_by_name(name))
        else {
            return (None, 1, introspection);
        };
        let concrete = MetaTypeName::concrete_typename(&meta.ty).to_owned();
        let is_list = MetaTypeName::create(&meta.ty).is_list();
        let in_connection = parent.is_some_and(is_connection);
        let items = if introspection {
            if is_list { self.bounds.items(name) } else { 1 }
        } else if is_connection(&concrete) {
            self.page_size(field)
        } else if is_list && !(in_connection && matches!(name, "edges" | "nodes")) {
            LIST_WEIGHT
        } else {
            1
        };
        (Some(concrete), items, introspection)
    }

    /// A connection returns at most `first` items (the default page when
    /// absent; the argument's own validator refuses values over the maximum).
    fn page_size(&self, field: &async_graphql::parser::types::Field) -> u64 {
        let value = field.get_argument("first").map(|v| &v.node);
        let number = match value {
            Some(Value::Variable(name)) => self.variables.get(name).and_then(|v| match v {
                ConstValue::Number(n) => n.as_u64(),
                _ => None,
            }),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        number.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE)
    }
}

fn is_connection(type_name: &str) -> bool {
    type_name.ends_with("Connection")
}

/// The first NUL character in a request's strings, by where it is.
fn find_nul(document: &ExecutableDocument, variables: &Variables) -> Option<String> {
    for (name, value) in variables.iter() {
        if const_has_nul(value) {
            return Some(format!("variable `${name}`"));
        }
    }
    let mut found = None;
    let mut visit = |argument: &str, value: &Value| {
        if found.is_none() && value_has_nul(value) {
            found = Some(format!("argument `{argument}`"));
        }
    };
    for (_, operation) in document.operations.iter() {
        for variable in &operation.node.variable_definitions {
            if let Some(default) = &variable.node.default_value
                && const_has_nul(&default.node)
            {
                return Some(format!("default of `${}`", variable.node.name.node));
            }
        }
        visit_arguments(&operation.node.selection_set.node, &mut visit);
        for directive in &operation.node.directives {
            for (name, value) in &directive.node.arguments {
                visit(&name.node, &value.node);
            }
        }
    }
    for fragment in document.fragments.values() {
        visit_arguments(&fragment.node.selection_set.node, &mut visit);
    }
    found
}

fn visit_arguments(set: &SelectionSet, visit: &mut impl FnMut(&str, &Value)) {
    for selection in &set.items {
        let directives = match &selection.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    visit(&name.node, &value.node);
                }
                visit_arguments(&field.node.selection_set.node, visit);
                &field.node.directives
            }
            Selection::InlineFragment(fragment) => {
                visit_arguments(&fragment.node.selection_set.node, visit);
                &fragment.node.directives
            }
            Selection::FragmentSpread(spread) => &spread.node.directives,
        };
        for directive in directives {
            for (name, value) in &directive.node.arguments {
                visit(&name.node, &value.node);
            }
        }
    }
}

/// `fn $name(&$value) -> bool`: whether a string or an object key anywhere
/// in the value holds a NUL. Literals (`Value`) and variables and defaults
/// (`ConstValue`) have the same shape but are two types.
macro_rules! nul_finder {
    ($name:ident, $value:ident) => {
        fn $name(value: &$value) -> bool {
            match value {
                $value::String(s) => s.contains('\0'),
                $value::List(items) => items.iter().any($name),
                $value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || $name(v)),
                _ => false,
            }
        }
    };
}

nul_finder!(value_has_nul, Value);
nul_finder!(const_has_nul, ConstValue);

fn coded(message: impl Into<String>, pos: Option<Pos>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, pos);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// The schema extension: parse, refuse NUL, measure, refuse what is over.
pub struct QueryLimits {
    budget: Arc<OnceLock<Budget>>,
}

impl QueryLimits {
    pub fn new() -> Self {
        Self {
            budget: Arc::new(OnceLock::new()),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            budget: self.budget.clone(),
        })
    }
}

struct QueryLimitsExtension {
    budget: Arc<OnceLock<Budget>>,
}

#[async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    /// Runs before async-graphql parses: its own post-parse checks
    /// (recursion depth, directives) follow every fragment spread again, so a
    /// fragment chain must be refused before they see it.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let role = super::admin_only::role_of(&request, ctx);
        let variables = request.variables.clone();
        let document = request.parsed_query().map_err(|error| {
            let at = error
                .locations
                .first()
                .map(|p| format!(" at line {}, column {}", p.line, p.column))
                .unwrap_or_default();
            coded(
                format!("Syntax error: the document is not valid GraphQL{at}."),
                error.locations.first().copied(),
                "GRAPHQL_PARSE_FAILED",
            )
        })?;
        if let Some(place) = find_nul(document, &variables) {
            return Err(coded(
                format!("{place}: NUL characters are not allowed"),
                None,
                "BAD_USER_INPUT",
            ));
        }
        let registry = &ctx.schema_env.registry;
        let budget = self.budget.get_or_init(|| Budget::of(registry));
        let refused = measure(role, registry, &budget.bounds, document, &variables)
            .and_then(|cost| check(&cost, budget));
        if let Err(message) = refused {
            return Err(coded(message, None, "GRAPHQL_VALIDATION_FAILED"));
        }
        next.run(ctx, request).await
    }
}
