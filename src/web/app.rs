//! The status page's request handling: authentication, CSRF checks, routing to pages, the
//! JSON API and metrics, and actions sent to the runner. Synchronous: the server calls
//! [`App::respond`] on a blocking thread, each request reading one store snapshot.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;

use super::auth::{Auth, Bearer, MIN_PASSWORD_LEN, same_secret};
use super::http::{Method, Req, Resp, cookie, url_encode};
use super::objects;
use super::pages::*;
use super::pictures;
use super::quiet_log::{Event, QuietLog};
use super::system::{Host, config_view};
use super::views::{self, ObjectStats};
use crate::agent::registry::Registry;
use crate::config::Config;
use crate::model::{Clock, CsId, MvId};
use crate::runner::handle::{Answer, Request, RunnerHandle};
use crate::store::{ReadTx, Store, StoreError};

/// The session cookie; `__Host-` makes the browser insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-bh_session";
/// The login form's CSRF cookie (double submit: cookie and hidden field must agree).
pub const LOGIN_COOKIE: &str = "__Host-bh_login";
/// Search hits shown per space.
const SEARCH_LIMIT: usize = 50;
/// Longest search query accepted, in characters: names, mail addresses, DNs and anchors
/// are all far shorter, and each character costs work on every record scanned.
pub const MAX_QUERY: usize = 256;
/// How long an action waits for the runner before answering "queued".
const ACTION_WAIT: Duration = Duration::from_secs(5);
/// Per-object statistics are recomputed at most this often, and after every new run.
const STATS_MAX_AGE_MS: i64 = 300_000;

/// Who is asking.
enum Who {
    Session {
        id: String,
        csrf: String,
    },
    Token,
    /// Sent too many wrong API tokens lately: refused until this many seconds have passed.
    TokenThrottled(u64),
    Nobody,
}

/// Everything a request may need.
pub struct App {
    /// The config the page started with; [`App::config`] gives the one in force.
    start_config: Arc<Config>,
    store: Store,
    handle: RunnerHandle,
    clock: Arc<dyn Clock>,
    auth: Auth,
    host: Host,
    stats: Mutex<Option<(u64, i64, Arc<ObjectStats>)>>,
    quiet: Mutex<QuietLog>,
    started_ms: i64,
    certificate: String,
    agents: Option<Registry>,
}

/// An error page or JSON error.
fn failure(api: bool, status: u16, text: &str) -> Resp {
    if api {
        Resp::json(status, &serde_json::json!({ "error": text }))
    } else {
        Resp::text(status, text)
    }
}

impl App {
    /// The app over a (read-only) store; `certificate` describes the certificate in use.
    pub fn new(
        config: Config,
        store: Store,
        handle: RunnerHandle,
        clock: Arc<dyn Clock>,
        certificate: String,
    ) -> App {
        let auth = Auth::new(
            config.web.session_idle.as_millis() as i64,
            config.web.api_token.clone(),
        );
        App {
            started_ms: clock.now_ms(),
            start_config: Arc::new(config),
            store,
            handle,
            clock,
            auth,
            host: Host::new(),
            stats: Mutex::new(None),
            quiet: Mutex::new(QuietLog::default()),
            certificate,
            agents: None,
        }
    }

    /// The config in force: the one a SIGHUP reload published, else the start one. (The
    /// page's own [web] settings stay those it started with.)
    fn config(&self) -> Arc<Config> {
        self.handle
            .live()
            .config()
            .unwrap_or_else(|| Arc::clone(&self.start_config))
    }

    /// The register of agents the Agents page lists and revokes (None: no listener).
    pub fn with_agents(mut self, agents: Option<Registry>) -> App {
        self.agents = agents;
        self
    }

    /// Logs every session out (after the password changed elsewhere).
    pub fn logout_all(&self) {
        self.auth.logout_all();
    }

    /// Logs a repeated event (failed login, wrong token, refused connection) at WARN,
    /// unless the quiet log holds it back for its summary line.
    pub fn warn_event(&self, event: Event, peer: IpAddr, what: &str) {
        let now = self.clock.now_ms();
        let mut quiet = self.quiet.lock().unwrap_or_else(|p| p.into_inner());
        let in_full = quiet.note(event, peer, now);
        let due = quiet.due(now);
        drop(quiet);
        if in_full {
            tracing::warn!(%peer, "{what}");
        }
        for line in due {
            tracing::warn!("{line}");
        }
    }

    /// Writes the summary lines whose minute is over (the server calls this now and then,
    /// so that the last summary of a flood is not held back until the next event).
    pub fn flush_log(&self) {
        let now = self.clock.now_ms();
        let due = self
            .quiet
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .due(now);
        for line in due {
            tracing::warn!("{line}");
        }
    }

    /// Answers one request.
    pub fn respond(&self, req: &Req) -> Resp {
        let cacheable = req.path == "/static/style.css";
        let mut resp = self.route(req);
        if req.method == Method::Head {
            resp.body.clear();
        }
        resp.secured(cacheable)
    }

    fn who(&self, req: &Req, now: i64) -> Who {
        if let Some(id) = req.cookie(SESSION_COOKIE) {
            if let Some(s) = self.auth.session(&id, now) {
                return Who::Session { id, csrf: s.csrf };
            }
        }
        match self.auth.bearer(req.header("authorization"), req.peer, now) {
            Bearer::Valid => Who::Token,
            Bearer::Absent => Who::Nobody,
            Bearer::Wrong => {
                self.warn_event(Event::WrongToken, req.peer, "wrong API token");
                Who::Nobody
            }
            Bearer::Throttled(t) => {
                self.warn_event(
                    Event::WrongToken,
                    req.peer,
                    "API token not checked: too many wrong tokens",
                );
                Who::TokenThrottled(t.retry_after_s)
            }
        }
    }

    fn route(&self, req: &Req) -> Resp {
        let now = self.clock.now_ms();
        let path = req.path.as_str();
        let get = matches!(req.method, Method::Get | Method::Head);
        let post = req.method == Method::Post;
        match (get, post, path) {
            (true, _, "/healthz") => return self.healthz(now),
            (true, _, "/static/style.css") => return Resp::new(200, "text/css", STYLE_CSS),
            (true, _, "/login") => return self.login_form(req, "", 200),
            // Browsers ask for an icon on their own; a redirect to /login would replace the
            // login form's CSRF cookie behind the form's back.
            (true, _, "/favicon.ico") => return Resp::text(404, "no icon"),
            (_, true, "/login") => return self.login(req, now),
            _ => {}
        }
        if !get && !post {
            return Resp::text(405, "method not allowed").with("allow", "GET, HEAD, POST");
        }
        let api = path.starts_with("/api/") || path == "/metrics";
        let who = self.who(req, now);
        let (session_id, csrf) = match &who {
            Who::Session { id, csrf } => (Some(id.as_str()), csrf.as_str()),
            Who::Token if api => (None, ""),
            Who::TokenThrottled(s) => {
                return failure(
                    api,
                    429,
                    &format!("too many wrong API tokens; try again in {s} s"),
                )
                .with("retry-after", s.to_string());
            }
            _ if api => {
                return failure(true, 401, "log in, or send the API token as a bearer token")
                    .with("www-authenticate", "Bearer");
            }
            _ if get => return Resp::see_other("/login"),
            _ => return Resp::text(401, "log in first"),
        };
        if post {
            if let Err(why) = self.check_post(req, &who) {
                self.warn_event(
                    Event::RefusedPost,
                    req.peer,
                    &format!(
                        "refused POST to {path} (origin {}, host {}): {why}",
                        req.header("origin").unwrap_or("-"),
                        req.header("host").unwrap_or("-")
                    ),
                );
                return failure(api, 403, why);
            }
        }
        let who_name = match who {
            Who::Token => "api token",
            _ => "admin (status page)",
        };
        let result = if api {
            self.api(req, post, now, who_name)
        } else {
            self.page(
                req,
                post,
                now,
                who_name,
                session_id.unwrap_or_default(),
                csrf,
            )
        };
        result.unwrap_or_else(|e| {
            tracing::error!(path, "status page: {e}");
            failure(api, 500, &format!("the state file could not be read: {e}"))
        })
    }

    /// CSRF token (form field or header) plus a same-origin check; bearer calls need neither.
    fn check_post(&self, req: &Req, who: &Who) -> Result<(), &'static str> {
        let Who::Session { csrf, .. } = who else {
            return Ok(());
        };
        if let Some(site) = req.header("sec-fetch-site") {
            if site != "same-origin" && site != "none" {
                return Err("cross-site request");
            }
        }
        if let (Some(origin), Some(host)) = (req.header("origin"), req.header("host")) {
            if origin != format!("https://{host}") {
                return Err("request from another origin");
            }
        }
        let given = req
            .header("x-csrf-token")
            .map(str::to_string)
            .or_else(|| req.form().remove("csrf"));
        match given {
            Some(t) if same_secret(t.as_bytes(), csrf.as_bytes()) => Ok(()),
            Some(_) => Err("wrong CSRF token"),
            None => Err("missing CSRF token"),
        }
    }

    fn read(&self) -> Result<ReadTx, StoreError> {
        self.store.read()
    }

    fn healthz(&self, now: i64) -> Resp {
        let ok = self
            .read()
            .and_then(|tx| {
                views::overview(
                    &tx,
                    &self.config(),
                    &self.handle.status(),
                    self.started_ms,
                    now,
                )
            })
            .map(|o| o.health == "ok")
            .unwrap_or(false);
        if ok {
            Resp::text(200, "ok\n")
        } else {
            Resp::text(503, "degraded\n")
        }
    }

    /// Per-connector object statistics, recomputed after each new run.
    fn stats(&self, tx: &ReadTx, now: i64) -> Result<Arc<ObjectStats>, StoreError> {
        let runs = tx.run_count()?;
        let mut cache = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, at, s)) = cache.as_ref() {
            if *n == runs && now - at < STATS_MAX_AGE_MS {
                return Ok(Arc::clone(s));
            }
        }
        let s = Arc::new(views::object_stats(tx)?);
        *cache = Some((runs, now, Arc::clone(&s)));
        Ok(s)
    }

    fn nav(
        &self,
        title: &str,
        active: &'static str,
        csrf: &str,
        notice: &str,
        now: i64,
    ) -> (Nav, Fmt) {
        let live = self.handle.status();
        (
            Nav {
                title: title.into(),
                active,
                csrf: csrf.into(),
                staging: live.staging,
                notice: notice.into(),
                refresh: false,
                version: env!("CARGO_PKG_VERSION"),
                danger: self.config().danger_settings(),
            },
            Fmt { now_ms: now },
        )
    }

    fn render(page: impl Template, status: u16) -> Resp {
        match page.render() {
            Ok(html) => Resp::html(status, html),
            Err(e) => Resp::text(500, &format!("template: {e}")),
        }
    }

    /// Sends an action to the runner and waits a little for its answer.
    fn act(&self, req: Request) -> (u16, String) {
        match self.handle.ask_blocking(req, ACTION_WAIT) {
            Answer::Done(Ok(m)) => (200, m),
            Answer::Done(Err(e)) => (409, e),
            Answer::Queued => (
                202,
                "queued: a cycle is running; this happens when it ends".into(),
            ),
            Answer::Stopped => (503, "the runner is shutting down".into()),
        }
    }

    fn page(
        &self,
        req: &Req,
        post: bool,
        now: i64,
        who: &str,
        session: &str,
        csrf: &str,
    ) -> Result<Resp, StoreError> {
        let path = req.path.as_str();
        let q = req.query_params();
        let form = req.form();
        let notice = match q.get("notice").map(String::as_str) {
            Some("cycle") => "Cycle requested; it appears in the run history when it ends.",
            _ => "",
        };
        let nav = |title: &str, active: &'static str| self.nav(title, active, csrf, notice, now);
        let message = |heading: &str, (status, text): (u16, String), back: &str| {
            let (nav, fmt) = nav(heading, "/");
            Self::render(
                MessagePage {
                    nav,
                    fmt,
                    heading: heading.into(),
                    text,
                    error: status >= 400,
                    back: back.into(),
                },
                status,
            )
        };
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        Ok(match (post, segs.as_slice()) {
            (false, [""]) => {
                let tx = self.read()?;
                let v = views::overview(
                    &tx,
                    &self.config(),
                    &self.handle.status(),
                    self.started_ms,
                    now,
                )?;
                let (mut nav, fmt) = nav("Overview", "/");
                nav.refresh = v.running.is_some() || v.queued > 0;
                let watches = self.handle.status().watches;
                let agents = self.agents_list();
                let (topology, history) =
                    pictures::overview(&tx, &self.config(), v.counts.mv, &watches, &agents, now)?;
                let page = OverviewPage {
                    nav,
                    fmt,
                    v,
                    topology,
                    history,
                };
                Self::render(page, 200)
            }
            (false, ["connectors"]) => {
                let tx = self.read()?;
                let stats = self.stats(&tx, now)?;
                let list = views::connectors(&tx, &self.config(), &stats)?;
                let (nav, fmt) = nav("Connectors", "/connectors");
                let objects = pictures::per_connector(&tx, &list, now)?;
                let page = ConnectorsPage {
                    nav,
                    fmt,
                    list,
                    objects,
                };
                Self::render(page, 200)
            }
            (false, ["connectors", name, "pending"]) => {
                let format = q.get("format").map_or("html", String::as_str);
                match super::pending::show(&self.read()?, &self.config(), name, format)? {
                    super::pending::Shown::Page(p) => {
                        let (nav, fmt) = nav(&format!("Pending: {}", p.connector), "/connectors");
                        let ldif = matches!(p.kind, "ad" | "ldap");
                        Self::render(super::pending::PendingPage { nav, fmt, p, ldif }, 200)
                    }
                    super::pending::Shown::File(resp) => resp,
                    super::pending::Shown::Refused(status, text) => {
                        message("Pending exports", (status, text), "/connectors")
                    }
                }
            }
            (false, ["runs"]) => {
                let list = views::runs(&self.read()?)?;
                let (nav, fmt) = nav("Runs", "/runs");
                Self::render(RunsPage { nav, fmt, list }, 200)
            }
            (false, ["runs", id]) => match id
                .parse()
                .ok()
                .map(|id| views::run_detail(&self.read()?, id))
                .transpose()?
                .flatten()
            {
                Some(d) => {
                    let (nav, fmt) = nav(&format!("Run #{}", d.summary.id), "/runs");
                    Self::render(RunPage { nav, fmt, d }, 200)
                }
                None => message("Not found", (404, format!("there is no run {id}")), "/runs"),
            },
            (false, ["objects"]) => {
                let query = q.get("q").cloned().unwrap_or_default();
                if query.chars().count() > MAX_QUERY {
                    return Ok(message(
                        "Objects",
                        (
                            400,
                            format!("the query is longer than {MAX_QUERY} characters"),
                        ),
                        "/objects",
                    ));
                }
                let r = objects::search_for(&self.read()?, &query, SEARCH_LIMIT, &req.gone)?;
                let (nav, fmt) = nav("Objects", "/objects");
                Self::render(ObjectsPage { nav, fmt, r }, 200)
            }
            (false, ["objects", "mv", id]) => match id
                .parse()
                .ok()
                .map(|id| objects::mv_view(&self.read()?, MvId(id)))
                .transpose()?
                .flatten()
            {
                Some(m) => {
                    let (nav, fmt) = nav(&m.name.clone(), "/objects");
                    Self::render(MvPage { nav, fmt, m }, 200)
                }
                None => message(
                    "Not found",
                    (404, format!("there is no metaverse object {id}")),
                    "/objects",
                ),
            },
            (false, ["objects", "cs", id]) => match id
                .parse()
                .ok()
                .map(|id| objects::cs_view(&self.read()?, CsId(id)))
                .transpose()?
                .flatten()
            {
                Some(c) => {
                    let (nav, fmt) = nav(&c.dn.clone(), "/objects");
                    Self::render(CsPage { nav, fmt, c }, 200)
                }
                None => message(
                    "Not found",
                    (404, format!("there is no connector-space object {id}")),
                    "/objects",
                ),
            },
            (false, ["config"]) => {
                let c = config_view(
                    &self.config(),
                    self.handle.status().staging,
                    &self.certificate,
                );
                let (nav, fmt) = nav("Config", "/config");
                Self::render(ConfigPage { nav, fmt, c }, 200)
            }
            (false, ["host"]) => {
                let h = self.host.view(&self.config().state_file);
                let (nav, fmt) = nav("Host", "/host");
                Self::render(HostPage { nav, fmt, h }, 200)
            }
            (false, ["account"]) => {
                let (nav, fmt) = nav("Password", "/account");
                Self::render(
                    AccountPage {
                        nav,
                        fmt,
                        min_len: MIN_PASSWORD_LEN,
                    },
                    200,
                )
            }
            (false, ["agents"]) => {
                let (nav, fmt) = nav("Agents", "/agents");
                Self::render(
                    AgentsPage {
                        nav,
                        fmt,
                        enabled: self.agents.is_some(),
                        list: self.agents_list(),
                    },
                    200,
                )
            }
            (true, ["actions", "revoke-agent"]) => {
                let agent = form.get("agent").cloned().unwrap_or_default();
                message("Revoke agent", self.revoke_agent(&agent, who), "/agents")
            }
            (true, ["logout"]) => {
                self.auth.logout(session);
                Resp::see_other("/login").with("set-cookie", cookie(SESSION_COOKIE, "", 0))
            }
            (true, ["actions", "cycle"]) => {
                let full = form.get("mode").is_some_and(|m| m == "full");
                match self.handle.submit(Request::Cycle {
                    full,
                    who: who.into(),
                }) {
                    Some(_) => Resp::see_other("/?notice=cycle"),
                    None => message("Cycle", (503, "the runner is shutting down".into()), "/"),
                }
            }
            (true, ["actions", "sync-object"]) => message(
                "Sync this object now",
                self.act(Request::SyncObject {
                    connector: form.get("connector").cloned().unwrap_or_default(),
                    dn: form.get("dn").cloned().unwrap_or_default(),
                    dry_run: form.get("dry_run").is_some_and(|v| v == "1"),
                    who: who.into(),
                }),
                "/objects",
            ),
            (true, ["actions", "approve"]) => {
                let connector = form.get("connector").cloned().unwrap_or_default();
                message(
                    "Approve deletes",
                    self.act(Request::ApproveDeletes {
                        connector,
                        who: who.into(),
                    }),
                    "/",
                )
            }
            (true, ["actions", "leave-staging"]) => message(
                "Leave staging mode",
                self.act(Request::LeaveStaging { who: who.into() }),
                "/",
            ),
            (true, ["account", "password"]) => {
                let outcome = self.change_password(req, &form, session, now);
                if outcome.0 == 200 {
                    self.auth.logout_all();
                    message(
                        "Password changed",
                        (200, "The password was changed; log in again.".into()),
                        "/login",
                    )
                    .with("set-cookie", cookie(SESSION_COOKIE, "", 0))
                } else {
                    message("Password", outcome, "/account")
                }
            }
            _ => message(
                "Not found",
                (
                    404,
                    format!("nothing at {}", url_encode(path).replace("%2F", "/")),
                ),
                "/",
            ),
        })
    }
}

#[path = "api.rs"]
mod api;

#[path = "login.rs"]
mod login;

#[path = "agents.rs"]
mod agents;

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "app_abuse_tests.rs"]
mod abuse_tests;

#[cfg(test)]
#[path = "app_banner_tests.rs"]
mod banner_tests;

#[cfg(test)]
#[path = "console_tests.rs"]
mod console_tests;

#[cfg(test)]
#[path = "app_agents_tests.rs"]
mod agents_tests;
