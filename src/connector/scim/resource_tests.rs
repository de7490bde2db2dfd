//! Resource mapping: tables of resources and changes against what SCIM wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::connector::scim::path::ENTERPRISE;
use crate::connector::scim::put::apply_to_resource;
use crate::model::Value;

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

fn service() -> Service {
    Service::assumed()
}

fn set(vals: &[Value]) -> ValueSet {
    vals.iter().cloned().collect()
}

fn change(attr: &str, op: ChangeOp) -> AttrChange {
    AttrChange {
        attr: AttrName::new(attr),
        op,
    }
}

#[test]
fn dns_name_resources_by_external_id_else_by_id() {
    let a = dn_for(Kind::User, Some("AbC+/="), "42");
    assert_eq!(a.as_str(), "externalId=AbC\\+/\\=,ou=Users");
    let Some((Kind::User, DnKey::ExternalId(x))) = dn_key(&a) else {
        panic!("not an externalId DN");
    };
    assert_eq!(x, "AbC+/=");
    let b = dn_for(Kind::Group, None, "g-1");
    assert!(matches!(dn_key(&b), Some((Kind::Group, DnKey::Id(id))) if id == "g-1"));
    assert!(dn_key(&dn("cn=x,ou=People")).is_none());
}

#[test]
fn import_flattens_complex_typed_extension_and_reference_values() {
    let res = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "id": "u1", "externalId": "x1", "userName": "ann@example.test", "active": false,
        "meta": {"version": "W/\"3\""},
        "name": {"givenName": "Ann", "familyName": "Ödegaard"},
        "emails": [{"type": "work", "value": "ann@example.test", "primary": true},
                   {"value": "untyped@example.test"}],
        "phoneNumbers": [{"type": "mobile", "value": "+1 555"}],
        "groups": [{"value": "g1"}],
        ENTERPRISE: {"department": "Sales", "manager": {"value": "u2"}}
    });
    let attrs = flatten(&res, &|id: &str| dn_for(Kind::User, None, id));
    let text = |n: &str| attrs.first_text(n);
    assert_eq!(text("userName").as_deref(), Some("ann@example.test"));
    assert_eq!(
        attrs.get("active"),
        Some(&ValueSet::one(Value::Boolean(false)))
    );
    assert_eq!(text("name.familyName").as_deref(), Some("Ödegaard"));
    assert_eq!(
        text("emails[type eq \"work\"].value").as_deref(),
        Some("ann@example.test")
    );
    assert_eq!(
        text("emails.value").as_deref(),
        Some("untyped@example.test")
    );
    assert_eq!(
        text("phoneNumbers[type eq \"mobile\"].value").as_deref(),
        Some("+1 555")
    );
    assert_eq!(
        text(&format!("{ENTERPRISE}:department")).as_deref(),
        Some("Sales")
    );
    assert_eq!(
        attrs.get(&format!("{ENTERPRISE}:manager")),
        Some(&ValueSet::one(Value::Reference(RefTarget::Dn(dn(
            "id=u2,ou=Users"
        )))))
    );
    // A rule that flows `primary` must see it come back.
    assert_eq!(
        attrs.get("emails[type eq \"work\"].primary"),
        Some(&ValueSet::one(Value::Boolean(true)))
    );
    for skipped in [
        "id",
        "meta.version",
        "groups",
        "schemas",
        "emails[type eq \"work\"].type",
    ] {
        assert!(attrs.get(skipped).is_none(), "{skipped} was imported");
    }
}

#[test]
fn a_create_body_places_every_attribute_and_defers_unresolved_members() {
    let mut attrs = Attributes::new();
    let mut put = |n: &str, v: ValueSet| attrs.set(AttrName::new(n), v);
    put("userName", ValueSet::one(Value::str("ann")));
    put("active", ValueSet::one(Value::Boolean(true)));
    put("name.givenName", ValueSet::one(Value::str("Ann")));
    put(
        "emails[type eq \"work\"].value",
        ValueSet::one(Value::str("a@x")),
    );
    put(
        "addresses[type eq \"work\"].locality",
        ValueSet::one(Value::str("Oslo")),
    );
    put(
        "addresses[type eq \"work\"].country",
        ValueSet::one(Value::str("NO")),
    );
    put(
        &format!("{ENTERPRISE}:manager"),
        ValueSet::one(Value::Reference(RefTarget::Dn(dn("externalId=m,ou=Users")))),
    );
    let mut ids = Ids::new();
    ids.insert(
        dn("externalId=m,ou=Users").norm().to_string(),
        "m-id".into(),
    );
    let (body, later) = create_body(Kind::User, &attrs, &service(), &ids, 10).unwrap();
    assert!(later.is_empty());
    assert_eq!(body["userName"], "ann");
    assert_eq!(body["active"], true);
    assert_eq!(body["name"]["givenName"], "Ann");
    assert_eq!(body["emails"], json!([{"type": "work", "value": "a@x"}]));
    assert_eq!(
        body["addresses"],
        json!([{"type": "work", "locality": "Oslo", "country": "NO"}])
    );
    assert_eq!(body[ENTERPRISE]["manager"], json!({"value": "m-id"}));
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
    );

    let members: ValueSet = (0..5)
        .map(|i| Value::Reference(RefTarget::Dn(dn(&format!("externalId=u{i},ou=Users")))))
        .collect();
    let mut g = Attributes::new();
    g.set(AttrName::new("displayName"), ValueSet::one(Value::str("G")));
    g.set(AttrName::new("members"), members);
    let mut ids = Ids::new();
    for i in 0..4 {
        ids.insert(
            dn(&format!("externalId=u{i},ou=Users")).norm().to_string(),
            format!("id{i}"),
        );
    }
    let (body, later) = create_body(Kind::Group, &g, &service(), &ids, 3).unwrap();
    assert_eq!(body["members"].as_array().unwrap().len(), 3);
    assert_eq!(later.len(), 2, "one beyond the chunk, one unresolved");
}

#[test]
fn patches_carry_only_the_changes_and_chunk_members() {
    let mut ids = Ids::new();
    let refs: Vec<Value> = (0..250)
        .map(|i| {
            let d = dn(&format!("externalId=u{i},ou=Users"));
            ids.insert(d.norm().to_string(), format!("id{i}"));
            Value::Reference(RefTarget::Dn(d))
        })
        .collect();
    let changes = vec![
        change(
            "displayName",
            ChangeOp::Replace(ValueSet::one(Value::str("New"))),
        ),
        change("members", ChangeOp::Add(set(&refs[..230]))),
        change("members", ChangeOp::Remove(set(&refs[230..250]))),
    ];
    let reqs = patch_requests(Kind::Group, &changes, &service(), &ids, 8).unwrap();
    // Attributes in one request; 230 adds in chunks of 8; 20 removes as three operations
    // naming 8, 8 and 4 members.
    assert_eq!(reqs.len(), 1 + 29 + 3);
    assert_eq!(
        reqs[0][0].json,
        json!({"op": "replace", "path": "displayName", "value": "New"})
    );
    assert_eq!(reqs[1][0].json["value"].as_array().unwrap().len(), 8);
    assert_eq!(reqs[29][0].json["value"].as_array().unwrap().len(), 6);
    let removes: Vec<usize> = reqs[30..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 1);
            r[0].json["path"]
                .as_str()
                .unwrap()
                .matches("value eq")
                .count()
        })
        .collect();
    assert_eq!(removes, vec![8, 8, 4]);
    assert_eq!(
        reqs[32][0].json,
        json!({"op": "remove", "path": "members[value eq \"id246\" or value eq \"id247\" or \
                value eq \"id248\" or value eq \"id249\"]"})
    );
    assert!(
        reqs[30..]
            .iter()
            .flatten()
            .all(|o| o.json["op"] == "remove")
    );

    let one = vec![change("members", ChangeOp::Add(set(&refs[..1])))];
    let reqs = patch_requests(Kind::Group, &one, &service(), &ids, 100).unwrap();
    assert_eq!(reqs.len(), 1);
    let size = patch_message(&reqs[0]).to_string().len();
    assert!(size < 200, "a one-member change sent {size} bytes");
}

#[test]
fn clearing_a_typed_value_removes_its_entry_and_a_missing_entry_is_added() {
    let ids = Ids::new();
    let changes = vec![
        change(
            "emails[type eq \"work\"].value",
            ChangeOp::Replace(ValueSet::new()),
        ),
        change(
            "phoneNumbers[type eq \"mobile\"].value",
            ChangeOp::Replace(ValueSet::one(Value::str("+47"))),
        ),
        change("title", ChangeOp::Replace(ValueSet::new())),
    ];
    let reqs = patch_requests(Kind::User, &changes, &service(), &ids, 100).unwrap();
    let ops: Vec<Json> = reqs[0].iter().map(|o| o.json.clone()).collect();
    assert_eq!(
        ops,
        vec![
            json!({"op": "remove", "path": "emails[type eq \"work\"]"}),
            json!({"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+47"}),
            json!({"op": "remove", "path": "title"}),
        ]
    );
    let fixed = add_missing_entries(
        &reqs[0],
        &json!({"phoneNumbers": [{"type": "work", "value": "1"}]}),
    );
    assert_eq!(
        fixed[2].json,
        json!({"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+47"}]})
    );
}

#[test]
fn values_follow_the_schema_type_and_bad_ones_are_named() {
    use crate::connector::scim::schema::Service as S;
    let schemas = json!({"Resources": [{"id": "urn:ietf:params:scim:schemas:core:2.0:User",
        "attributes": [{"name": "active", "type": "boolean"}, {"name": "userName", "type": "string"}]}]});
    let s = S::from_documents(None, None, Some(&schemas));
    let ids = Ids::new();
    let ok = |v: Value| {
        patch_requests(
            Kind::User,
            &[change("active", ChangeOp::Replace(ValueSet::one(v)))],
            &s,
            &ids,
            10,
        )
    };
    assert_eq!(ok(Value::str("FALSE")).unwrap()[0][0].json["value"], false);
    assert_eq!(ok(Value::Integer(1)).unwrap()[0][0].json["value"], true);
    let e = ok(Value::str("maybe")).unwrap_err();
    assert!(e.contains("active") && e.contains("true or false"), "{e}");
    let e = patch_requests(
        Kind::User,
        &[change(
            "nickName",
            ChangeOp::Replace(ValueSet::one(Value::str("x"))),
        )],
        &s,
        &ids,
        10,
    )
    .unwrap_err();
    assert!(e.contains("no attribute \"nickName\""), "{e}");
}

#[test]
fn put_applies_changes_to_the_whole_resource() {
    let mut res = json!({"id": "1", "userName": "a", "title": "t", "meta": {},
        "members": [{"value": "x"}, {"value": "y"}]});
    let mut ids = Ids::new();
    ids.insert(dn("id=z,ou=Users").norm().to_string(), "z".into());
    ids.insert(dn("id=x,ou=Users").norm().to_string(), "x".into());
    let changes = vec![
        change("title", ChangeOp::Replace(ValueSet::new())),
        change(
            "userName",
            ChangeOp::Replace(ValueSet::one(Value::str("b"))),
        ),
        change(
            "members",
            ChangeOp::Add(ValueSet::one(Value::Reference(RefTarget::Dn(dn(
                "id=z,ou=Users",
            ))))),
        ),
        change(
            "members",
            ChangeOp::Remove(ValueSet::one(Value::Reference(RefTarget::Dn(dn(
                "id=x,ou=Users",
            ))))),
        ),
    ];
    apply_to_resource(Kind::Group, &mut res, &changes, &service(), &ids).unwrap();
    assert_eq!(
        res,
        json!({"id": "1", "userName": "b", "members": [{"value": "y"}, {"value": "z"}]})
    );
}
