//! Round trips through a real scim2-server 0.8.3, recorded: for each attribute shape, the
//! value a rule flows, the body the connector sends for it (create and PATCH), and the
//! resource the server answered with afterwards (tests/data/scim2-server-0.8.3/). What the
//! server gives back, flattened as the import does, must match what was sent up to
//! notation, or a quiet cycle would write again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value as Json;

use super::{Ids, create_body, dn_for, flatten, patch_message, patch_requests};
use crate::connector::scim::path::ENTERPRISE;
use crate::connector::scim::schema::{Kind, Service};
use crate::model::{AttrChange, AttrName, Attributes, ChangeOp, Dn, RefTarget, Value, ValueSet};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/scim2-server-0.8.3/"
);

fn fixture(name: &str) -> Json {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The service as scim2-server 0.8.3 describes itself.
fn service() -> Service {
    Service::from_documents(
        Some(&fixture("ServiceProviderConfig.json")),
        Some(&fixture("ResourceTypes.json")),
        Some(&fixture("Schemas.json")),
    )
}

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

fn one(v: Value) -> ValueSet {
    ValueSet::one(v)
}

/// The manager's and the group member's ids as the recording server gave them.
fn ids(recorded: &Json) -> Ids {
    let mut ids = Ids::new();
    for (dn_text, key) in [
        ("externalId=TUdS,ou=Users", "manager_id"),
        ("externalId=QU5O,ou=Users", "user_id"),
    ] {
        ids.insert(
            dn(dn_text).norm().to_string(),
            recorded[key].as_str().unwrap().to_string(),
        );
    }
    ids
}

/// Every shape a user rule flows, as the rules hand them over.
fn user_values() -> Vec<(&'static str, ValueSet)> {
    vec![
        ("externalId", one(Value::str("QU5O"))),
        ("userName", one(Value::str("Ann.Lee@Corp.Example.Test"))),
        ("displayName", one(Value::str("Åsa Lee"))),
        ("name.givenName", one(Value::str("Åsa"))),
        // A boolean as the text an expression gives.
        ("active", one(Value::str("True"))),
        (
            "emails[type eq \"work\"].value",
            one(Value::str("ann@corp.example.test")),
        ),
        // `primary` of a typed entry, from an expression and as a boolean.
        ("emails[type eq \"work\"].primary", one(Value::str("True"))),
        (
            "phoneNumbers[type eq \"work\"].primary",
            one(Value::Boolean(false)),
        ),
        // A number into a string attribute.
        (
            "phoneNumbers[type eq \"work\"].value",
            one(Value::Integer(5551234)),
        ),
        // Binary, which SCIM carries as base64.
        (
            "x509Certificates[type eq \"work\"].value",
            one(Value::Binary(vec![0x30, 0x82, 0x01, 0x0a])),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            one(Value::Integer(42)),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            one(Value::str("R&D")),
        ),
        // A reference, written as the manager's id.
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            one(Value::Reference(RefTarget::Dn(dn(
                "externalId=TUdS,ou=Users",
            )))),
        ),
    ]
}

fn attributes(values: &[(&str, ValueSet)]) -> Attributes {
    values
        .iter()
        .map(|(n, v)| (AttrName::new(n), v.clone()))
        .collect()
}

fn recorded() -> Json {
    fixture("roundtrip.json")
}

/// Reads a resource as the import does: referenced ids become the DNs of the recording.
fn imported(resource: &Json, recorded: &Json) -> Attributes {
    let manager = recorded["manager_id"].as_str().unwrap().to_string();
    let user = recorded["user_id"].as_str().unwrap().to_string();
    flatten(resource, &move |id: &str| {
        if id == manager {
            dn("externalId=TUdS,ou=Users")
        } else if id == user {
            dn("externalId=QU5O,ou=Users")
        } else {
            dn_for(Kind::User, None, id)
        }
    })
}

/// Each desired value must be what the import read, up to notation.
fn assert_round_trip(want: &[(&str, ValueSet)], got: &Attributes, what: &str) {
    for (name, values) in want {
        let back = got.get(name).cloned().unwrap_or_default();
        assert!(
            values.same_as(&back),
            "{what}: {name} sent {values:?}, read back {back:?}"
        );
    }
}

#[test]
fn a_created_user_reads_back_as_sent_in_every_shape() {
    let rec = recorded();
    let (body, later) = create_body(
        Kind::User,
        &attributes(&user_values()),
        &service(),
        &ids(&rec),
        100,
    )
    .unwrap();
    assert!(later.is_empty(), "{later:?}");
    // The recording was made with exactly this body.
    assert_eq!(body, rec["user_sent"]);
    assert_round_trip(
        &user_values(),
        &imported(&rec["user_returned"], &rec),
        "create",
    );
    assert_eq!(
        imported(&rec["user_created"], &rec),
        imported(&rec["user_returned"], &rec),
        "the POST answer is the resource as a GET reads it"
    );
}

#[test]
fn a_patched_user_reads_back_as_sent() {
    let rec = recorded();
    let patched = vec![
        ("active", one(Value::str("False"))),
        ("emails[type eq \"work\"].primary", one(Value::str("false"))),
    ];
    let changes: Vec<AttrChange> = patched
        .iter()
        .map(|(n, v)| AttrChange {
            attr: AttrName::new(n),
            op: ChangeOp::Replace(v.clone()),
        })
        .collect();
    let reqs = patch_requests(Kind::User, &changes, &service(), &ids(&rec), 100).unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(patch_message(&reqs[0]), rec["patch_sent"]);
    let back = imported(&rec["user_after_patch"], &rec);
    assert_round_trip(&patched, &back, "patch");
    // The rest is untouched, and still as first sent.
    let rest: Vec<(&str, ValueSet)> = user_values()
        .into_iter()
        .filter(|(n, _)| !patched.iter().any(|(p, _)| p == n))
        .collect();
    assert_round_trip(&rest, &back, "patch, other attributes");
}

#[test]
fn a_created_group_reads_back_its_members() {
    let rec = recorded();
    let members: ValueSet = [
        Value::Reference(RefTarget::Dn(dn("externalId=TUdS,ou=Users"))),
        Value::Reference(RefTarget::Dn(dn("EXTERNALID=QU5O, OU=Users"))),
    ]
    .into_iter()
    .collect();
    let group = vec![
        ("externalId", one(Value::str("R1JQ"))),
        ("displayName", one(Value::str("Staff"))),
        ("members", members),
    ];
    let (body, _) = create_body(
        Kind::Group,
        &attributes(&group),
        &service(),
        &ids(&rec),
        100,
    )
    .unwrap();
    assert_eq!(body, rec["group_sent"]);
    assert_round_trip(&group, &imported(&rec["group_returned"], &rec), "group");
}

#[test]
fn the_enterprise_manager_reads_back_as_the_reference_sent() {
    let rec = recorded();
    let back = imported(&rec["user_returned"], &rec);
    assert_eq!(
        back.get(&format!("{ENTERPRISE}:manager")),
        Some(&one(Value::Reference(RefTarget::Dn(dn(
            "externalId=TUdS,ou=Users"
        )))))
    );
}
