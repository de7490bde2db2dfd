//! The double's writes: creating users and groups with the properties Graph insists on,
//! updates, member and owner references, the manager, and directory extension properties.

use serde_json::{Map, Value as Json, json};

use super::api::{BATCH_LIMIT, Req, Resp, bad, method_not_allowed, not_found, reference_id};
use super::directory::{Directory, Kind};

/// Checks the properties Graph insists on when creating a user.
fn user_create_error(dir: &Directory, body: &Map<String, Json>) -> Option<Resp> {
    for p in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "userPrincipalName",
    ] {
        if body.get(p).is_none_or(Json::is_null) {
            return Some(bad(&format!(
                "Invalid value specified for property '{p}' of resource 'User'."
            )));
        }
    }
    if body
        .get("passwordProfile")
        .and_then(|p| p.get("password"))
        .and_then(Json::as_str)
        .is_none_or(str::is_empty)
    {
        return Some(bad(
            "Invalid value specified for property 'passwordProfile' of resource 'User'.",
        ));
    }
    let upn = body
        .get("userPrincipalName")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if upn.split('@').count() != 2 || upn.ends_with('@') || upn.starts_with('@') {
        return Some(bad(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ));
    }
    if dir
        .find(Kind::User, "userPrincipalName", upn)
        .next()
        .is_some()
    {
        return Some(Resp::conflict("userPrincipalName"));
    }
    if let Some(imm) = body.get("onPremisesImmutableId").and_then(Json::as_str) {
        if imm.contains('$') || imm.contains('_') {
            return Some(bad(
                "Invalid value specified for property 'onPremisesImmutableId' of resource 'User'.",
            ));
        }
        if dir
            .find(Kind::User, "onPremisesImmutableId", imm)
            .next()
            .is_some()
        {
            return Some(Resp::conflict("onPremisesImmutableId"));
        }
    }
    None
}

pub(super) fn create_user(dir: &mut Directory, base: &str, req: &Req) -> Resp {
    let Some(body) = req.body.as_object() else {
        return bad("The request body must be a JSON object.");
    };
    if let Some(e) = user_create_error(dir, body) {
        return e;
    }
    let mut props = body.clone();
    props.remove("id");
    if !props.contains_key("mail") {
        props.insert("mail".into(), Json::Null);
    }
    let id = dir.insert(Kind::User, props);
    created(dir, base, "users", &id)
}

fn created(dir: &Directory, base: &str, coll: &str, id: &str) -> Resp {
    let Some(o) = dir.live(id) else {
        return not_found(id);
    };
    let mut body = dir.render(o, None);
    if let Some(m) = body.as_object_mut() {
        for (k, v) in &o.props {
            if k != "passwordProfile" {
                m.insert(k.clone(), v.clone());
            }
        }
        m.insert(
            "@odata.context".into(),
            json!(format!("{base}/v1.0/$metadata#{coll}/$entity")),
        );
    }
    let mut r = Resp::json(201, body);
    r.headers.push((
        "Location".into(),
        format!("{base}/v1.0/directoryObjects/{id}"),
    ));
    r
}

pub(super) fn create_group(dir: &mut Directory, base: &str, req: &Req) -> Resp {
    let Some(body) = req.body.as_object() else {
        return bad("The request body must be a JSON object.");
    };
    for p in [
        "displayName",
        "mailEnabled",
        "mailNickname",
        "securityEnabled",
    ] {
        if body.get(p).is_none_or(Json::is_null) {
            return bad(&format!(
                "Invalid value specified for property '{p}' of resource 'Group'."
            ));
        }
    }
    let unified = body
        .get("groupTypes")
        .and_then(Json::as_array)
        .is_some_and(|t| t.iter().any(|v| v == "Unified"));
    if body.get("mailEnabled") == Some(&json!(true)) && !unified {
        return bad(
            "Creating mail-enabled security groups or distribution groups is not supported.",
        );
    }
    let mut props = Map::new();
    let mut binds = Vec::new();
    for (k, v) in body {
        match k.strip_suffix("@odata.bind") {
            Some(nav @ ("members" | "owners")) => match v.as_array() {
                Some(urls) => binds.push((nav.to_string(), urls.clone())),
                None => return bad(&format!("{k} must be an array of URLs.")),
            },
            Some(other) => return bad(&format!("Unsupported navigation property '{other}'.")),
            None if k != "id" => {
                props.insert(k.clone(), v.clone());
            }
            None => {}
        }
    }
    if binds.iter().map(|(_, u)| u.len()).sum::<usize>() > BATCH_LIMIT {
        return bad(
            "The maximum number of references that can be added in a single request is 20.",
        );
    }
    for (_, urls) in &binds {
        if let Some(e) = missing_refs(dir, urls) {
            return e;
        }
    }
    let id = dir.insert(Kind::Group, props);
    for (nav, urls) in binds {
        let ids: Vec<String> = urls.iter().filter_map(reference_id).collect();
        add_refs(dir, &id, &nav, &ids);
    }
    created(dir, base, "groups", &id)
}

fn missing_refs(dir: &Directory, urls: &[Json]) -> Option<Resp> {
    let all_there = urls
        .iter()
        .all(|u| reference_id(u).is_some_and(|id| dir.live(&id).is_some() && !dir.lagging(&id)));
    (!all_there).then(|| {
        bad("One or more added object references do not exist for the following modified properties: 'members'.")
    })
}

pub(super) fn add_refs(dir: &mut Directory, group: &str, nav: &str, ids: &[String]) -> Resp {
    if dir.live(group).is_none_or(|g| g.kind != Kind::Group) || dir.lagging(group) {
        return not_found(group);
    }
    let urls: Vec<Json> = ids.iter().map(|i| json!(i)).collect();
    if let Some(e) = missing_refs(dir, &urls) {
        return e;
    }
    let g = &dir.objects[group];
    let set = if nav == "members" {
        &g.members
    } else {
        &g.owners
    };
    if ids.iter().any(|i| set.contains(i)) {
        return bad(&format!(
            "One or more added object references already exist for the following modified properties: '{nav}'."
        ));
    }
    for i in ids {
        if nav == "members" {
            dir.set_member(group, i, true);
        } else if let Some(g) = dir.objects.get_mut(group) {
            g.owners.insert(i.clone());
        }
    }
    dir.touch(group);
    Resp::empty()
}

pub(super) fn remove_ref(dir: &mut Directory, group: &str, nav: &str, member: &str) -> Resp {
    let Some(g) = dir.live(group).filter(|g| g.kind == Kind::Group) else {
        return not_found(group);
    };
    let present = if nav == "members" {
        g.members.contains(member)
    } else {
        g.owners.contains(member)
    };
    if !present {
        return not_found(member);
    }
    if nav == "members" {
        dir.set_member(group, member, false);
    } else if let Some(g) = dir.objects.get_mut(group) {
        g.owners.remove(member);
    }
    dir.touch(group);
    Resp::empty()
}

pub(super) fn set_manager(dir: &mut Directory, user: &str, manager: Option<String>) -> Resp {
    if dir.live(user).is_none_or(|u| u.kind != Kind::User) || dir.lagging(user) {
        return not_found(user);
    }
    if let Some(m) = &manager {
        if dir.live(m).is_none() || dir.lagging(m) {
            return not_found(m);
        }
    }
    if manager.is_none() && dir.objects[user].manager.is_none() {
        return not_found("manager");
    }
    if let Some(u) = dir.objects.get_mut(user) {
        u.manager = manager;
    }
    dir.touch(user);
    Resp::empty()
}

pub(super) fn update(dir: &mut Directory, id: &str, body: &Json) -> Resp {
    let Some(obj) = dir.live(id) else {
        return not_found(id);
    };
    if dir.lagging(id) {
        return not_found(id);
    }
    let kind = obj.kind;
    let Some(body) = body.as_object() else {
        return bad("The request body must be a JSON object.");
    };
    let mut binds = Vec::new();
    let mut props = Map::new();
    for (k, v) in body {
        match k.strip_suffix("@odata.bind") {
            Some(nav @ ("members" | "owners")) if kind == Kind::Group => match v.as_array() {
                Some(urls) => binds.push((nav.to_string(), urls.clone())),
                None => return bad(&format!("{k} must be an array of URLs.")),
            },
            Some(other) => return bad(&format!("Unsupported navigation property '{other}'.")),
            None if k == "id" => return bad("Property 'id' is read-only and cannot be set."),
            None => {
                props.insert(k.clone(), v.clone());
            }
        }
    }
    if binds.iter().map(|(_, u)| u.len()).sum::<usize>() > BATCH_LIMIT {
        return bad(
            "The maximum number of references that can be added in a single request is 20.",
        );
    }
    if kind == Kind::User {
        for unique in ["userPrincipalName", "onPremisesImmutableId"] {
            if let Some(v) = props.get(unique).and_then(Json::as_str) {
                if dir.find(Kind::User, unique, v).any(|o| o.id != id) {
                    return Resp::conflict(unique);
                }
            }
        }
    }
    for (nav, urls) in &binds {
        let ids: Vec<String> = urls.iter().filter_map(reference_id).collect();
        let r = add_refs(dir, id, nav, &ids);
        if r.status != 204 {
            return r;
        }
    }
    if let Some(o) = dir.objects.get_mut(id) {
        for (k, v) in props {
            merge(&mut o.props, k, v);
        }
    }
    dir.touch(id);
    Resp::empty()
}

/// A PATCH value: complex properties (`onPremisesExtensionAttributes`) merge by member, as
/// Graph merges them; everything else replaces.
fn merge(props: &mut Map<String, Json>, k: String, v: Json) {
    match (props.get_mut(&k), v) {
        (Some(Json::Object(old)), Json::Object(new)) if k == "onPremisesExtensionAttributes" => {
            for (ik, iv) in new {
                old.insert(ik, iv);
            }
        }
        (_, v) => {
            props.insert(k, v);
        }
    }
}

pub(super) fn extension_properties(dir: &mut Directory, req: &Req, app: &str) -> Resp {
    match req.method.as_str() {
        "GET" => {
            let value: Vec<Json> = dir
                .extensions
                .iter()
                .filter(|(a, _)| a == app)
                .map(|(_, e)| e.clone())
                .collect();
            Resp::json(200, json!({"value": value}))
        }
        "POST" => {
            let Some(name) = req.body["name"].as_str() else {
                return bad(
                    "Invalid value specified for property 'name' of resource 'ExtensionProperty'.",
                );
            };
            let app_id = app.replace('-', "");
            let full = format!("extension_{app_id}_{name}");
            if dir
                .extensions
                .iter()
                .any(|(a, e)| a == app && e["name"] == json!(full))
            {
                return Resp::conflict("name");
            }
            let e = json!({"id": uuid::Uuid::new_v4().to_string(), "name": full,
                "dataType": req.body["dataType"], "targetObjects": req.body["targetObjects"],
                "isSyncedFromOnPremises": false, "appDisplayName": ""});
            dir.extensions.push((app.to_string(), e.clone()));
            Resp::json(201, e)
        }
        _ => method_not_allowed(),
    }
}
