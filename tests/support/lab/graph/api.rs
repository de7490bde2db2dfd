//! The Graph v1.0 paths the double serves, answered from the [`Directory`] as Microsoft's
//! API reference describes them: status codes, the error body
//! `{"error":{"code","message"}}`, paging by `@odata.nextLink`, `$select`, `$filter` by
//! equality, JSON batching and delta queries.

use serde_json::{Map, Value as Json, json};

use super::delta;
use super::directory::{Directory, Kind};
use super::writes;

/// One request, as the server (or a `$batch` envelope) hands it over.
pub struct Req {
    /// The method, upper case.
    pub method: String,
    /// The path below `/v1.0`, decoded, starting with `/`.
    pub path: String,
    /// The decoded query parameters.
    pub query: Vec<(String, String)>,
    /// The JSON body, Null when none.
    pub body: Json,
    /// Whether it came inside a `$batch`.
    pub in_batch: bool,
}

impl Req {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn select(&self) -> Option<Vec<String>> {
        self.param("$select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }
}

/// One answer: status, extra headers, body.
pub struct Resp {
    /// The status.
    pub status: u16,
    /// Extra headers (`Retry-After`, `Location`, throttle headers).
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Json>,
}

impl Resp {
    /// A JSON answer.
    pub fn json(status: u16, body: Json) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// 204 No Content.
    pub fn empty() -> Resp {
        Resp {
            status: 204,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Graph's error body.
    pub fn error(status: u16, code: &str, message: &str) -> Resp {
        Resp::json(
            status,
            json!({"error": {"code": code, "message": message,
                "innerError": {"date": "2026-12-08T00:00:00", "request-id": uuid::Uuid::new_v4().to_string()}}}),
        )
    }

    pub(super) fn conflict(property: &str) -> Resp {
        let message =
            format!("Another object with the same value for property {property} already exists.");
        // What Graph answers (a 400, with ObjectConflict in the details), as seen in its
        // docs' issue threads.
        Resp::json(
            400,
            json!({"error": {"code": "Request_BadRequest", "message": message,
                "details": [{"code": "ObjectConflict", "message": message, "target": property}]}}),
        )
    }
}

pub(super) fn not_found(id: &str) -> Resp {
    Resp::error(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

pub(super) fn bad(message: &str) -> Resp {
    Resp::error(400, "Request_BadRequest", message)
}

/// The most requests in one `$batch`, and the most references added in one request.
pub const BATCH_LIMIT: usize = 20;

/// Answers one request below `/v1.0` (the token endpoint and TLS are the server's).
pub fn handle(dir: &mut Directory, base: &str, req: &Req) -> Resp {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let write = matches!(req.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
        && segs.first() != Some(&"$batch");
    if write {
        if let Err(secs) = dir.take_write() {
            let mut r = Resp::error(
                429,
                "TooManyRequests",
                "Too many requests. The application has exceeded its write budget for this tenant.",
            );
            r.headers.push(("Retry-After".into(), secs.to_string()));
            r.headers.push((
                "x-ms-throttle-scope".into(),
                "Tenant_Application/WriteRequests".into(),
            ));
            return r;
        }
    }
    let mut resp = route(dir, base, req, &segs);
    if write {
        if let Some(p) = dir.budget_used_percent().filter(|p| *p >= 80) {
            resp.headers
                .push(("x-ms-throttle-limit-percentage".into(), p.to_string()));
            resp.headers.push((
                "x-ms-throttle-scope".into(),
                "Tenant_Application/WriteRequests".into(),
            ));
        }
    }
    resp
}

fn kind_of(seg: &str) -> Option<Kind> {
    match seg {
        "users" => Some(Kind::User),
        "groups" => Some(Kind::Group),
        "contacts" => Some(Kind::Contact),
        "devices" => Some(Kind::Device),
        _ => None,
    }
}

fn route(dir: &mut Directory, base: &str, req: &Req, segs: &[&str]) -> Resp {
    let m = req.method.as_str();
    match segs {
        ["$batch"] if m == "POST" => batch(dir, base, req),
        [coll, "delta" | "delta()"] if m == "GET" => match kind_of(coll) {
            Some(k) => delta::round(dir, base, req, k, req.select()),
            None => not_found(coll),
        },
        [coll] if m == "GET" => match kind_of(coll) {
            Some(k) => list(dir, base, req, k),
            None => not_found(coll),
        },
        ["users"] if m == "POST" => writes::create_user(dir, base, req),
        ["groups"] if m == "POST" => writes::create_group(dir, base, req),
        ["contacts" | "devices"] if m == "POST" => Resp::error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
        [coll, id] => match (kind_of(coll), m) {
            (Some(k), "GET") => get_one(dir, k, id, req.select().as_deref()),
            (Some(Kind::User | Kind::Group), "PATCH") => writes::update(dir, id, &req.body),
            (Some(Kind::User | Kind::Group), "DELETE") => match dir.live(id) {
                Some(_) => {
                    dir.delete(id);
                    Resp::empty()
                }
                None => not_found(id),
            },
            _ => method_not_allowed(),
        },
        ["groups", id, nav @ ("members" | "owners")] if m == "GET" => {
            navigation(dir, base, req, id, nav)
        }
        ["groups", id, nav @ ("members" | "owners"), "$ref"] if m == "POST" => {
            match reference_id(&req.body["@odata.id"]) {
                Some(member) => writes::add_refs(dir, id, nav, &[member]),
                None => bad("The request body must carry @odata.id."),
            }
        }
        ["groups", id, nav @ ("members" | "owners"), member, "$ref"] if m == "DELETE" => {
            writes::remove_ref(dir, id, nav, member)
        }
        ["users", id, "manager"] if m == "GET" => {
            match dir.live(id).and_then(|u| u.manager.clone()) {
                Some(mgr) => match dir.live(&mgr) {
                    Some(o) => Resp::json(200, dir.render(o, req.select().as_deref())),
                    None => not_found("manager"),
                },
                None if dir.live(id).is_some() => not_found("manager"),
                None => not_found(id),
            }
        }
        ["users", id, "manager", "$ref"] if m == "PUT" => {
            writes::set_manager(dir, id, reference_id(&req.body["@odata.id"]))
        }
        ["users", id, "manager", "$ref"] if m == "DELETE" => writes::set_manager(dir, id, None),
        ["applications", app, "extensionProperties"] => writes::extension_properties(dir, req, app),
        _ => Resp::error(
            400,
            "BadRequest",
            &format!("Resource not found for the segment '{}'.", segs.join("/")),
        ),
    }
}

pub(super) fn method_not_allowed() -> Resp {
    Resp::error(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

/// The object id at the end of a directoryObjects URL (`…/directoryObjects/{id}`).
pub fn reference_id(v: &Json) -> Option<String> {
    let url = v.as_str()?;
    let id = url.trim_end_matches('/').rsplit('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

fn get_one(dir: &Directory, kind: Kind, id: &str, select: Option<&[String]>) -> Resp {
    match dir.live(id) {
        Some(o) if o.kind == kind && !dir.lagging(id) => Resp::json(200, dir.render(o, select)),
        _ => not_found(id),
    }
}

/// `$filter` of the forms the connector and the SDK use: `prop eq 'v'` (joined by `or`),
/// and `proxyAddresses/any(p:p eq 'v')`.
fn filter_matches(o: &super::directory::Obj, filter: &str) -> Result<bool, String> {
    let mut any = false;
    for clause in filter.split(" or ") {
        let clause = clause.trim();
        let (prop, value) = if let Some(rest) = clause.strip_suffix(')') {
            let (prop, inner) = rest.split_once("/any(").ok_or(clause)?;
            let (_, cond) = inner.split_once(':').ok_or(clause)?;
            let (_, value) = cond.split_once(" eq ").ok_or(clause)?;
            (prop.trim(), value.trim())
        } else {
            let (prop, value) = clause.split_once(" eq ").ok_or(clause)?;
            (prop.trim(), value.trim())
        };
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or(clause)?
            .replace("''", "'");
        let hit = match o.props.get(prop) {
            Some(Json::String(s)) => s.eq_ignore_ascii_case(&value),
            Some(Json::Array(a)) => a
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&value))),
            Some(Json::Bool(b)) => value == b.to_string(),
            _ => prop == "id" && o.id.eq_ignore_ascii_case(&value),
        };
        any |= hit;
    }
    Ok(any)
}

fn list(dir: &Directory, base: &str, req: &Req, kind: Kind) -> Resp {
    let mut hits = Vec::new();
    for o in dir
        .objects
        .values()
        .filter(|o| o.kind == kind && !o.deleted)
    {
        match req.param("$filter").map(|f| filter_matches(o, f)) {
            Some(Err(clause)) => {
                return bad(&format!("Invalid filter clause: {clause}"));
            }
            Some(Ok(false)) => continue,
            _ => hits.push(o),
        }
    }
    let select = req.select();
    let rendered: Vec<Json> = hits
        .iter()
        .map(|o| dir.render(o, select.as_deref()))
        .collect();
    page(base, req, kind.segment(), rendered)
}

fn navigation(dir: &Directory, base: &str, req: &Req, id: &str, nav: &str) -> Resp {
    let Some(g) = dir.live(id).filter(|g| g.kind == Kind::Group) else {
        return not_found(id);
    };
    let ids = if nav == "members" {
        &g.members
    } else {
        &g.owners
    };
    let select = req.select();
    let rendered = ids
        .iter()
        .filter_map(|m| dir.live(m))
        .map(|o| dir.render(o, select.as_deref()))
        .collect();
    page(base, req, &format!("groups/{id}/{nav}"), rendered)
}

/// Cuts a collection into pages of `$top` (default 100, at most 999), the next page's URL
/// carrying an opaque `$skiptoken`.
fn page(base: &str, req: &Req, path: &str, all: Vec<Json>) -> Resp {
    let top = req
        .param("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let skip = req
        .param("$skiptoken")
        .and_then(|t| t.strip_prefix("X'"))
        .and_then(|t| t.strip_suffix('\''))
        .and_then(|t| usize::from_str_radix(t, 16).ok())
        .unwrap_or(0);
    let end = (skip + top).min(all.len());
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/v1.0/$metadata#{path}")),
    );
    if end < all.len() {
        let mut next = format!("{base}/v1.0/{path}?$top={top}&$skiptoken=X'{end:x}'");
        for (k, v) in &req.query {
            if !k.eq_ignore_ascii_case("$top") && !k.eq_ignore_ascii_case("$skiptoken") {
                next.push_str(&format!("&{k}={}", super::encode(v)));
            }
        }
        body.insert("@odata.nextLink".into(), json!(next));
    }
    let value: Vec<Json> = all
        .into_iter()
        .skip(skip)
        .take(end.saturating_sub(skip))
        .collect();
    body.insert("value".into(), Json::Array(value));
    Resp::json(200, Json::Object(body))
}

fn batch(dir: &mut Directory, base: &str, req: &Req) -> Resp {
    let Some(requests) = req.body["requests"].as_array() else {
        return bad("The batch request body must carry a 'requests' array.");
    };
    if requests.len() > BATCH_LIMIT {
        return Resp::error(
            400,
            "BadRequest",
            "Number of requests in the batch exceeds the maximum of 20.",
        );
    }
    let mut statuses: Vec<(String, u16)> = Vec::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = match &r["id"] {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            _ => return bad("Each request in a batch needs an id."),
        };
        let failed_dep = r["dependsOn"].as_array().is_some_and(|deps| {
            deps.iter().any(|d| {
                statuses
                    .iter()
                    .find(|(i, _)| Some(i.as_str()) == d.as_str())
                    .is_none_or(|(_, s)| *s >= 400)
            })
        });
        let (method, url) = (
            r["method"].as_str().unwrap_or(""),
            r["url"].as_str().unwrap_or(""),
        );
        let answer = if failed_dep {
            Resp::error(
                424,
                "FailedDependency",
                "A request this one depends on failed.",
            )
        } else if method.is_empty() || url.is_empty() || url.contains("://") {
            bad("Each request in a batch needs a method and a relative URL.")
        } else {
            // Relative to the version root, with or without the leading slash (Microsoft's
            // Python SDK sends `users`, its documentation shows `/users`).
            let (path, query) = super::split_target(&format!("/{}", url.trim_start_matches('/')));
            let inner = Req {
                method: method.to_ascii_uppercase(),
                path,
                query,
                body: r.get("body").cloned().unwrap_or(Json::Null),
                in_batch: true,
            };
            let a = handle(dir, base, &inner);
            super::log(dir, &inner, url, a.status);
            a
        };
        statuses.push((id.clone(), answer.status));
        let mut headers = Map::new();
        for (k, v) in &answer.headers {
            headers.insert(k.clone(), json!(v));
        }
        let mut one = Map::new();
        one.insert("id".into(), json!(id));
        one.insert("status".into(), json!(answer.status));
        if let Some(b) = answer.body {
            headers.insert("Content-Type".into(), json!("application/json"));
            one.insert("body".into(), b);
        }
        one.insert("headers".into(), Json::Object(headers));
        responses.push(Json::Object(one));
    }
    // Graph does not promise the order of the answers; the double returns them reversed, so
    // a client that relies on order fails here rather than in a tenant.
    responses.reverse();
    Resp::json(200, json!({"responses": responses}))
}
