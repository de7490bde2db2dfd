//! Delta queries (`/users/delta`, `/groups/delta`, …), as Graph's delta-query overview
//! describes them: a round of pages linked by `@odata.nextLink`, ending with an
//! `@odata.deltaLink` that the next round starts from; deleted objects as `@removed`; group
//! membership changes as `members@delta` when `members` is selected; a link the service no
//! longer knows is refused with `syncStateNotFound`, and the client must start over.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use super::api::{Req, Resp};
use super::directory::{DeltaState, Directory, Kind};

/// Entries per delta page (Graph chooses its own page size; clients must follow the links).
const PAGE: usize = 200;

/// Answers one delta request: a new round, the next page of one, or a deltaLink.
pub fn round(
    dir: &mut Directory,
    base: &str,
    req: &Req,
    kind: Kind,
    select: Option<Vec<String>>,
) -> Resp {
    let param = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (token, mut state) = if let Some(t) = param("$skiptoken") {
        match dir.delta.get(&t) {
            Some(s) if s.kind == kind => (t, s.clone()),
            _ => return expired(),
        }
    } else if let Some(t) = param("$deltatoken") {
        if t == "latest" {
            let s = DeltaState {
                kind,
                from: dir.seq,
                upto: dir.seq,
                select,
                offset: 0,
            };
            return finish(dir, base, kind, s, Vec::new());
        }
        match dir.delta.get(&t) {
            Some(s) if s.kind == kind => {
                let s = DeltaState {
                    kind,
                    from: s.upto,
                    upto: dir.seq,
                    select: s.select.clone(),
                    offset: 0,
                };
                (new_token(), s)
            }
            _ => return expired(),
        }
    } else {
        let s = DeltaState {
            kind,
            from: 0,
            upto: dir.seq,
            select,
            offset: 0,
        };
        (new_token(), s)
    };
    let all = entries(dir, &state);
    let end = (state.offset + PAGE).min(all.len());
    let value: Vec<Json> = all[state.offset.min(end)..end].to_vec();
    if end < all.len() {
        state.offset = end;
        dir.delta.insert(token.clone(), state);
        let next = format!("{base}/v1.0/{}/delta?$skiptoken={token}", kind.segment());
        return Resp::json(
            200,
            json!({"@odata.context": context(base, kind), "@odata.nextLink": next, "value": value}),
        );
    }
    dir.delta.remove(&token);
    finish(dir, base, kind, state, value)
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn context(base: &str, kind: Kind) -> String {
    format!("{base}/v1.0/$metadata#{}", kind.segment())
}

fn finish(
    dir: &mut Directory,
    base: &str,
    kind: Kind,
    state: DeltaState,
    value: Vec<Json>,
) -> Resp {
    let token = new_token();
    dir.delta.insert(token.clone(), state);
    let link = format!("{base}/v1.0/{}/delta?$deltatoken={token}", kind.segment());
    Resp::json(
        200,
        json!({"@odata.context": context(base, kind), "@odata.deltaLink": link, "value": value}),
    )
}

fn expired() -> Resp {
    Resp::error(
        400,
        "syncStateNotFound",
        "The requested sync state is not found or has expired. Start a new delta round without a token.",
    )
}

/// Every entry of a round, in change order.
fn entries(dir: &Directory, s: &DeltaState) -> Vec<Json> {
    let with_members = s
        .select
        .as_ref()
        .is_some_and(|sel| sel.iter().any(|p| p == "members"))
        && s.kind == Kind::Group;
    // Member changes in the round, the last per (group, member).
    let mut member_changes: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    if with_members && s.from > 0 {
        for c in dir
            .member_log
            .iter()
            .filter(|c| c.seq > s.from && c.seq <= s.upto)
        {
            member_changes
                .entry(c.group.as_str())
                .or_default()
                .insert(c.member.as_str(), c.added);
        }
    }
    let mut picked: Vec<(u64, Json)> = Vec::new();
    for o in dir.objects.values().filter(|o| o.kind == s.kind) {
        let changed = o.seq > s.from && o.seq <= s.upto;
        let members = member_changes.get(o.id.as_str());
        if !changed && members.is_none() {
            continue;
        }
        if o.deleted {
            // An object made and deleted within the round was never seen: nothing to say.
            if s.from > 0 && changed {
                picked.push((
                    o.seq,
                    json!({"@odata.type": o.kind.odata_type(), "id": o.id,
                        "@removed": {"reason": "changed"}}),
                ));
            }
            continue;
        }
        let mut e = dir.render(o, s.select.as_deref());
        let with_manager = s.kind == Kind::User
            && s.select
                .as_ref()
                .is_some_and(|sel| sel.iter().any(|p| p == "manager"));
        if let (true, Some(m), Some(map)) = (with_manager, &o.manager, e.as_object_mut()) {
            map.insert(
                "manager@delta".into(),
                Json::Array(vec![member_entry(dir, m, true)]),
            );
        }
        if with_members {
            let list: Vec<Json> = if s.from == 0 {
                o.members
                    .iter()
                    .map(|m| member_entry(dir, m, true))
                    .collect()
            } else {
                members
                    .map(|ms| {
                        ms.iter()
                            .map(|(m, added)| member_entry(dir, m, *added))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if let Some(map) = e.as_object_mut() {
                if !list.is_empty() {
                    map.insert("members@delta".into(), Json::Array(list));
                }
            }
        }
        picked.push((o.seq, e));
    }
    picked.sort_by_key(|(seq, _)| *seq);
    picked.into_iter().map(|(_, e)| e).collect()
}

fn member_entry(dir: &Directory, id: &str, added: bool) -> Json {
    let kind = dir.objects.get(id).map(|o| o.kind).unwrap_or(Kind::User);
    let mut m = Map::new();
    m.insert("@odata.type".into(), json!(kind.odata_type()));
    m.insert("id".into(), json!(id));
    if !added {
        m.insert("@removed".into(), json!({"reason": "deleted"}));
    }
    Json::Object(m)
}
