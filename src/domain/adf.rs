//! ADF 1.0 (Auto-lead Data Format) documents read into a [`LeadSubmission`].
//!
//! Partners send what real feeds send, so the reading is lenient: unknown
//! elements and attributes are skipped, whitespace is collapsed, CDATA is
//! text, names are matched without case or namespace prefix. It is strict
//! where leniency would be dangerous: no DTD, no entity declaration and no
//! entity reference other than the five predefined ones and character
//! references — nothing is ever expanded (billion laughs, external entities).
//!
//! Mapping choices (documented in the README's partner section too):
//! - one `prospect` per document; several are refused rather than half-read;
//! - the contact is the `customer/contact` marked `primarycontact="1"`, else
//!   the first one;
//! - `name part="first|last"` win; a `name part="full"` (or without `part`)
//!   fills what is missing: `Last, First` is split at the comma, otherwise
//!   the first word is the first name and the rest the last name (keeps
//!   "de la Fontaine" whole); a single word is a last name;
//! - the first syntactically valid `email` is the lead's; the first valid
//!   `phone` of type `voice`, `cellphone` or no type is the lead's, a `fax` or
//!   `pager` only when there is no other. Every other address or number is
//!   kept on the lead as a warning (nothing a partner sent is lost);
//! - the vehicle is the first one whose `interest` is not `trade-in` or
//!   `sell`; `status="new|used"` is its condition;
//! - `comments` of the customer, then of the vehicle, form the message;
//! - `source` is the provider's name, else the vendor's name, else the
//!   `<id source>` attribute;
//! - `<id source="S">X</id>` is the idempotency key `adf:S:X`;
//! - a `finance` element whose `method` is not `cash` makes a `CRE` lead
//!   (credit application); everything else is a `LEAD` (ADF has no way to
//!   say "renewal", so `REN` is never derived);
//! - `status="resend"` marks a repeat: with a known `<id>` it is a replay.
use super::contact::{Email, Phone};
use super::lead_intake::{
    LeadSubmission, LeadType, LeadWarning, VehicleCondition, VehicleOfInterest, limits,
};
use quick_xml::events::Event;

/// Deepest element nesting accepted (ADF needs five levels).
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 5_000;

/// Why a document cannot be read as a lead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdfError {
    #[error("DTD and entity declarations are not accepted")]
    Dtd,
    #[error(
        "the entity reference &{0}; is not accepted (only &lt; &gt; &amp; &apos; &quot; and character references)"
    )]
    Entity(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("not an ADF document: {0}")]
    NotAdf(String),
    #[error(
        "the document is nested deeper than {MAX_DEPTH} elements or has more than {MAX_ELEMENTS}"
    )]
    TooBig,
}

/// A lead read from an ADF document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdfLead {
    pub submission: LeadSubmission,
    /// What the document held that the lead does not use (extra emails and
    /// phones, a year that is not a number, ...).
    pub warnings: Vec<LeadWarning>,
    /// `prospect status="resend"`: the partner says it sent this before.
    pub resend: bool,
}

/// Read an ADF document (bytes as received: UTF-8, or Latin-1 as a fallback
/// since older feeds still send ISO-8859-1).
pub fn parse(body: &[u8]) -> Result<AdfLead, AdfError> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text.to_owned(),
        Err(_) => body.iter().map(|&b| char::from(b)).collect(),
    };
    refuse_declarations(&text)?;
    let root = read_tree(&text)?;
    if root.name != "adf" {
        return Err(AdfError::NotAdf(format!(
            "the root element is <{}>, not <adf>",
            root.name
        )));
    }
    let prospects: Vec<&Node> = root.children_named("prospect").collect();
    match prospects.as_slice() {
        [prospect] => Ok(read_prospect(prospect)),
        [] => Err(AdfError::NotAdf("no <prospect> in <adf>".into())),
        _ => Err(AdfError::NotAdf(
            "one <prospect> per document, please; send the others separately".into(),
        )),
    }
}

/// Refused before parsing, wherever it appears (even in a comment).
fn refuse_declarations(text: &str) -> Result<(), AdfError> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(AdfError::Dtd);
    }
    Ok(())
}

/// One element: lowercased local name, attributes, direct text, children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn child<'a>(&'a self, name: &'a str) -> Option<&'a Node> {
        self.children_named(name).next()
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    }

    /// The text with whitespace runs collapsed; `None` when blank.
    fn value(&self) -> Option<String> {
        let collapsed = self.text.split_whitespace().collect::<Vec<_>>().join(" ");
        (!collapsed.is_empty()).then_some(collapsed)
    }

    /// The text trimmed, line breaks kept (comments).
    fn long_value(&self) -> Option<String> {
        let trimmed = self.text.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    fn child_value(&self, name: &str) -> Option<String> {
        self.child(name).and_then(Node::value)
    }
}

fn local_name(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    let local = name.rsplit(':').next().unwrap_or_default();
    local.to_ascii_lowercase()
}

fn malformed(e: impl std::fmt::Display) -> AdfError {
    AdfError::Malformed(e.to_string())
}

fn read_tree(text: &str) -> Result<Node, AdfError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                elements += 1;
                if stack.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(AdfError::TooBig);
                }
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                stack.push(open_element(&start)?);
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| malformed("unexpected end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content().map_err(malformed)?)?,
            Event::CData(t) => push_text(&mut stack, &t.decode().map_err(malformed)?)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(malformed)?;
                        predefined(&name)
                            .ok_or_else(|| AdfError::Entity(name.clone().into_owned()))?
                            .to_owned()
                    }
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::DocType(_) => return Err(AdfError::Dtd),
            Event::Eof => break,
            // `<?xml ...?>`, `<?adf version="1.0"?>`, comments.
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::Empty(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed(format!("<{}> is never closed", stack[0].name)));
    }
    root.ok_or_else(|| malformed("the document is empty"))
}

/// A new element with its attributes (entity references in values refused).
fn open_element(start: &quick_xml::events::BytesStart<'_>) -> Result<Node, AdfError> {
    let mut node = Node {
        name: local_name(start.name().as_ref()),
        ..Node::default()
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(malformed)?;
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| match e {
                quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                    _,
                    name,
                )) => AdfError::Entity(name),
                other => malformed(other),
            })?;
        node.attributes
            .push((local_name(attribute.key.as_ref()), value.into_owned()));
    }
    Ok(node)
}

fn predefined(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

fn push_text(stack: &mut [Node], text: &str) -> Result<(), AdfError> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

fn read_prospect(prospect: &Node) -> AdfLead {
    let mut warnings = Vec::new();
    let resend = prospect
        .attr("status")
        .is_some_and(|s| s.eq_ignore_ascii_case("resend"));
    let id = prospect.child("id");
    let id_source = id.and_then(|i| i.attr("source")).map(str::to_owned);
    let idempotency_key = id
        .and_then(Node::value)
        .map(|value| format!("adf:{}:{value}", id_source.as_deref().unwrap_or_default()));

    let contact = prospect.child("customer").and_then(|customer| {
        customer
            .children_named("contact")
            .find(|c| c.attr("primarycontact") == Some("1"))
            .or_else(|| customer.child("contact"))
    });
    let (first_name, last_name) = contact.map(names).unwrap_or_default();
    let email = contact.and_then(|c| pick_email(c, &mut warnings));
    let phone = contact.and_then(|c| pick_phone(c, &mut warnings));

    let vehicle_node = prospect.children_named("vehicle").find(|v| {
        !v.attr("interest")
            .is_some_and(|i| i.eq_ignore_ascii_case("trade-in") || i.eq_ignore_ascii_case("sell"))
    });
    let vehicle = vehicle_node.map(|v| vehicle(v, &mut warnings));

    let comments: Vec<String> = [prospect.child("customer"), vehicle_node]
        .into_iter()
        .flatten()
        .filter_map(|n| n.child("comments").and_then(Node::long_value))
        .collect();
    let message =
        (!comments.is_empty()).then(|| truncate_message(comments.join("\n\n"), &mut warnings));

    let source = prospect
        .child("provider")
        .and_then(|p| p.child_value("name"))
        .or_else(|| {
            prospect
                .child("vendor")
                .and_then(|v| v.child_value("vendorname"))
        })
        .or(id_source);

    AdfLead {
        submission: LeadSubmission {
            first_name,
            last_name,
            email,
            phone,
            message,
            source,
            lead_type: lead_type(prospect),
            vehicle,
            idempotency_key,
        },
        warnings,
        resend,
    }
}

/// First and last name from `name part="first|last|full"`.
fn names(contact: &Node) -> (Option<String>, Option<String>) {
    let part = |wanted: &str| {
        contact
            .children_named("name")
            .find(|n| {
                n.attr("part")
                    .unwrap_or("full")
                    .eq_ignore_ascii_case(wanted)
            })
            .and_then(Node::value)
    };
    let (mut first, mut last) = (part("first"), part("last"));
    if let Some(full) = part("full") {
        let (full_first, full_last) = split_full_name(&full);
        first = first.or(full_first);
        last = last.or(full_last);
    }
    (first, last)
}

/// `Tremblay, Marie` → (Marie, Tremblay); `Marie de la Fontaine` →
/// (Marie, de la Fontaine); `Cher` → (None, Cher).
fn split_full_name(full: &str) -> (Option<String>, Option<String>) {
    let non_empty = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    if let Some((last, first)) = full.split_once(',') {
        return (non_empty(first), non_empty(last));
    }
    match full.split_once(' ') {
        Some((first, last)) => (non_empty(first), non_empty(last)),
        None => (None, non_empty(full)),
    }
}

fn pick_email(contact: &Node, warnings: &mut Vec<LeadWarning>) -> Option<String> {
    let all: Vec<String> = contact
        .children_named("email")
        .filter_map(Node::value)
        .collect();
    let chosen = all
        .iter()
        .position(|e| Email::parse(e).is_ok())
        .unwrap_or(0);
    for (i, other) in all.iter().enumerate() {
        if i != chosen {
            warnings.push(unused("email", other));
        }
    }
    all.into_iter().nth(chosen)
}

fn pick_phone(contact: &Node, warnings: &mut Vec<LeadWarning>) -> Option<String> {
    let all: Vec<(bool, String)> = contact
        .children_named("phone")
        .filter_map(|p| {
            let reachable = !p
                .attr("type")
                .is_some_and(|t| t.eq_ignore_ascii_case("fax") || t.eq_ignore_ascii_case("pager"));
            p.value().map(|v| (reachable, v))
        })
        .collect();
    let valid = |(_, v): &(bool, String)| Phone::parse(v).is_ok();
    let chosen = all
        .iter()
        .position(|p| p.0 && valid(p))
        .or_else(|| all.iter().position(|p| p.0))
        .or_else(|| all.iter().position(valid))
        .unwrap_or(0);
    for (i, (_, other)) in all.iter().enumerate() {
        if i != chosen {
            warnings.push(unused("phone", other));
        }
    }
    all.into_iter().nth(chosen).map(|(_, v)| v)
}

fn unused(field: &str, value: &str) -> LeadWarning {
    LeadWarning {
        field: field.into(),
        message: format!("another {field} in the ADF was not used as the lead's: {value}"),
    }
}

fn vehicle(node: &Node, warnings: &mut Vec<LeadWarning>) -> VehicleOfInterest {
    let year = node
        .child_value("year")
        .and_then(|y| match y.parse::<i32>() {
            Ok(year) => Some(year),
            Err(_) => {
                warnings.push(LeadWarning {
                    field: "vehicle.year".into(),
                    message: format!("is not a year, ignored: {y}"),
                });
                None
            }
        });
    let condition = node
        .attr("status")
        .and_then(|s| match s.to_ascii_lowercase().as_str() {
            "new" => Some(VehicleCondition::New),
            "used" => Some(VehicleCondition::Used),
            _ => None,
        });
    VehicleOfInterest {
        year,
        make: node.child_value("make"),
        model: node.child_value("model"),
        trim: node.child_value("trim"),
        vin: node.child_value("vin"),
        stock_number: node.child_value("stock"),
        condition,
    }
}

/// A `finance` element (in the prospect or a vehicle) whose method is not
/// `cash` is a credit application.
fn lead_type(prospect: &Node) -> LeadType {
    let finances = prospect.children_named("finance").chain(
        prospect
            .children_named("vehicle")
            .flat_map(|v| v.children_named("finance")),
    );
    let mut credit = false;
    for finance in finances {
        let cash = finance
            .child_value("method")
            .is_some_and(|m| m.eq_ignore_ascii_case("cash"));
        credit |= !cash;
    }
    if credit {
        LeadType::Cre
    } else {
        LeadType::Lead
    }
}

fn truncate_message(message: String, warnings: &mut Vec<LeadWarning>) -> String {
    if message.chars().count() <= limits::MESSAGE {
        return message;
    }
    warnings.push(LeadWarning {
        field: "message".into(),
        message: format!("the comments were cut to {} characters", limits::MESSAGE),
    });
    message.chars().take(limits::MESSAGE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adf(prospect: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><?adf version="1.0"?><adf><prospect>{prospect}</prospect></adf>"#
        )
    }

    fn read(prospect: &str) -> AdfLead {
        parse(adf(prospect).as_bytes()).unwrap()
    }

    #[test]
    fn a_minimal_document_gives_the_contact_and_the_idempotency_key() {
        let lead = read(
            r#"<id sequence="1" source="acme">A-1</id><customer><contact>
               <name part="full">Marie Tremblay</name><email>marie@example.com</email>
               </contact></customer>"#,
        );
        let s = lead.submission;
        assert_eq!(s.first_name.as_deref(), Some("Marie"));
        assert_eq!(s.last_name.as_deref(), Some("Tremblay"));
        assert_eq!(s.email.as_deref(), Some("marie@example.com"));
        assert_eq!(s.idempotency_key.as_deref(), Some("adf:acme:A-1"));
        assert_eq!(s.source.as_deref(), Some("acme"));
        assert_eq!(s.lead_type, LeadType::Lead);
        assert!(!lead.resend);
    }

    #[test]
    fn a_full_name_splits_at_a_comma_or_after_the_first_word() {
        assert_eq!(
            split_full_name("Tremblay, Marie"),
            (Some("Marie".into()), Some("Tremblay".into()))
        );
        assert_eq!(
            split_full_name("Marie de la Fontaine"),
            (Some("Marie".into()), Some("de la Fontaine".into()))
        );
        assert_eq!(split_full_name("Cher"), (None, Some("Cher".into())));
    }

    #[test]
    fn first_and_last_parts_win_over_the_full_name() {
        let lead = read(
            r#"<customer><contact><name part="full">M. Tremblay</name>
               <name part="first">Marie</name><phone>514 555 0199</phone></contact></customer>"#,
        );
        assert_eq!(lead.submission.first_name.as_deref(), Some("Marie"));
        assert_eq!(lead.submission.last_name.as_deref(), Some("Tremblay"));
    }

    #[test]
    fn cdata_odd_whitespace_case_and_unknown_elements_are_read_leniently() {
        let lead = read(
            "<Customer><CONTACT foo=\"bar\"><unknown>x</unknown><Name Part=\"FIRST\">\n  Jean \t </Name>\
             <email><![CDATA[ jean@example.com ]]></email></CONTACT>\
             <comments><![CDATA[Call <after> 5pm & ask for Luc]]></comments></Customer>",
        );
        let s = lead.submission;
        assert_eq!(s.first_name.as_deref(), Some("Jean"));
        assert_eq!(s.email.as_deref(), Some("jean@example.com"));
        assert_eq!(s.message.as_deref(), Some("Call <after> 5pm & ask for Luc"));
    }

    #[test]
    fn the_first_valid_email_and_a_voice_phone_over_a_fax_are_chosen_the_rest_warned() {
        let lead = read(
            r#"<customer><contact><email>not-an-email</email><email>b@example.com</email>
               <phone type="fax">514 555 0100</phone><phone type="cellphone">514 555 0199</phone>
               </contact></customer>"#,
        );
        assert_eq!(lead.submission.email.as_deref(), Some("b@example.com"));
        assert_eq!(lead.submission.phone.as_deref(), Some("514 555 0199"));
        let fields: Vec<&str> = lead.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["email", "phone"]);
        assert!(lead.warnings[1].message.contains("514 555 0100"));
    }

    #[test]
    fn a_fax_is_used_when_it_is_the_only_phone() {
        let lead = read(
            r#"<customer><contact><phone type="fax">514 555 0100</phone></contact></customer>"#,
        );
        assert_eq!(lead.submission.phone.as_deref(), Some("514 555 0100"));
    }

    #[test]
    fn the_vehicle_of_interest_skips_trade_ins_and_reads_its_condition() {
        let lead = read(
            r#"<vehicle interest="trade-in" status="used"><make>Honda</make></vehicle>
               <vehicle interest="buy" status="used"><year>2021</year><make>Toyota</make>
               <model>RAV4</model><trim>LE</trim><vin>2T3W1RFV5MC123456</vin><stock>U1234</stock>
               <comments>Low mileage?</comments></vehicle>
               <customer><contact><email>a@example.com</email></contact></customer>"#,
        );
        let v = lead.submission.vehicle.unwrap();
        assert_eq!(v.year, Some(2021));
        assert_eq!(v.make.as_deref(), Some("Toyota"));
        assert_eq!(v.stock_number.as_deref(), Some("U1234"));
        assert_eq!(v.condition, Some(VehicleCondition::Used));
        assert_eq!(lead.submission.message.as_deref(), Some("Low mileage?"));
    }

    #[test]
    fn a_finance_element_makes_a_credit_application_unless_it_is_cash() {
        let finance = |method: &str| {
            read(&format!(
                r#"<vehicle><finance><method>{method}</method></finance></vehicle>
                   <customer><contact><email>a@example.com</email></contact></customer>"#
            ))
            .submission
            .lead_type
        };
        assert_eq!(finance("finance"), LeadType::Cre);
        assert_eq!(finance("lease"), LeadType::Cre);
        assert_eq!(finance("cash"), LeadType::Lead);
    }

    #[test]
    fn the_provider_name_is_the_source_before_the_vendor_name() {
        let lead = read(
            r#"<customer><contact><email>a@example.com</email></contact></customer>
               <vendor><vendorname>Dealer Site</vendorname></vendor>
               <provider><name part="full">AutoMarket</name></provider>"#,
        );
        assert_eq!(lead.submission.source.as_deref(), Some("AutoMarket"));
    }

    #[test]
    fn a_resend_is_flagged() {
        let doc = r#"<adf><prospect status="resend"><id source="s">1</id></prospect></adf>"#;
        assert!(parse(doc.as_bytes()).unwrap().resend);
    }

    #[test]
    fn a_doctype_or_an_entity_declaration_is_refused_before_parsing() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><adf>&lol2;</adf>"#;
        assert_eq!(parse(laughs.as_bytes()), Err(AdfError::Dtd));
        let xxe = r#"<!doctype adf SYSTEM "file:///etc/passwd"><adf/>"#;
        assert_eq!(parse(xxe.as_bytes()), Err(AdfError::Dtd));
    }

    #[test]
    fn an_undeclared_entity_reference_is_refused_not_expanded() {
        let doc = adf("<customer><contact><email>&xxe;</email></contact></customer>");
        assert_eq!(parse(doc.as_bytes()), Err(AdfError::Entity("xxe".into())));
        let attr = r#"<adf><prospect status="&xxe;"/></adf>"#;
        assert_eq!(parse(attr.as_bytes()), Err(AdfError::Entity("xxe".into())));
    }

    #[test]
    fn predefined_and_character_references_are_resolved() {
        let lead = read(
            "<customer><contact><name part=\"last\">D&apos;Amour &#233;&#xE9;</name><email>a@example.com</email></contact></customer>",
        );
        assert_eq!(lead.submission.last_name.as_deref(), Some("D'Amour éé"));
    }

    #[test]
    fn malformed_xml_and_other_roots_are_refused() {
        assert!(matches!(
            parse(b"<adf><prospect></adf>"),
            Err(AdfError::Malformed(_))
        ));
        assert!(matches!(parse(b"<lead/>"), Err(AdfError::NotAdf(_))));
        assert!(matches!(parse(b""), Err(AdfError::Malformed(_))));
        assert!(matches!(
            parse(b"<adf><prospect/><prospect/></adf>"),
            Err(AdfError::NotAdf(_))
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = format!("<adf>{}{}</adf>", "<x>".repeat(40), "</x>".repeat(40));
        assert_eq!(parse(doc.as_bytes()), Err(AdfError::TooBig));
    }

    #[test]
    fn latin1_bytes_are_read() {
        let mut doc = b"<adf><prospect><customer><contact><name part=\"last\">B".to_vec();
        doc.push(0xE9); // é in ISO-8859-1
        doc.extend_from_slice(
            b"dard</name><email>a@example.com</email></contact></customer></prospect></adf>",
        );
        let lead = parse(&doc).unwrap();
        assert_eq!(lead.submission.last_name.as_deref(), Some("Bédard"));
    }
}
