//! The HTML pages: askama templates from `web/templates`, compiled into the binary, over
//! the same view structs the JSON API returns. Values are HTML-escaped by askama.

use std::borrow::Borrow;

use askama::Template;

use super::objects::{CsView, MvView, SearchResult};
use super::system::{ConfigView, HostView};
use super::views::{ConnectorView, Overview, ProfileRun, RunDetail, RunSummary};

/// What every page's frame needs.
pub struct Nav {
    /// The page title.
    pub title: String,
    /// The nav link of this page.
    pub active: &'static str,
    /// The session's CSRF token, for the forms.
    pub csrf: String,
    /// Staging banner.
    pub staging: bool,
    /// A one-line notice after an action.
    pub notice: String,
    /// Reload every few seconds (a cycle is running): live progress without JavaScript.
    pub refresh: bool,
    /// Build version.
    pub version: &'static str,
    /// The `danger_*` settings in force: (connector, what it turns off).
    pub danger: Vec<(String, &'static str)>,
}

impl Nav {
    /// Whether a nav link is this page's.
    pub fn is_active(&self, href: &str) -> bool {
        href == self.active
    }

    /// The navigation links.
    pub fn links(&self) -> [(&'static str, &'static str); 8] {
        [
            ("/", "Overview"),
            ("/connectors", "Connectors"),
            ("/runs", "Runs"),
            ("/objects", "Objects"),
            ("/config", "Config"),
            ("/host", "Host"),
            ("/agents", "Agents"),
            ("/account", "Password"),
        ]
    }
}

/// Formatting helpers the templates call.
pub struct Fmt {
    /// Unix ms of the render, for "… ago".
    pub now_ms: i64,
}

impl Fmt {
    /// A UTC timestamp.
    pub fn when(&self, ms: impl Borrow<i64>) -> String {
        crate::model::UtcTime::from_unix(ms.borrow().div_euclid(1000)).readable()
    }

    /// "3 min ago" with the timestamp.
    pub fn ago(&self, ms: impl Borrow<i64>) -> String {
        let ms = *ms.borrow();
        let s = (self.now_ms - ms).max(0) / 1000;
        let rel = match s {
            0..60 => format!("{s} s ago"),
            60..7200 => format!("{} min ago", s / 60),
            _ => format!("{} h ago", s / 3600),
        };
        format!("{rel} ({})", self.when(ms))
    }

    /// A duration.
    pub fn dur(&self, ms: impl Borrow<i64>) -> String {
        let ms = *ms.borrow();
        match ms {
            ..1000 => format!("{ms} ms"),
            1000..120_000 => format!("{:.1} s", ms as f64 / 1000.0),
            _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        }
    }

    /// Bytes in binary units.
    pub fn bytes(&self, n: impl Borrow<u64>) -> String {
        let n = *n.borrow();
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = n as f64;
        let mut u = 0;
        while v >= 1024.0 && u + 1 < UNITS.len() {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 {
            format!("{n} B")
        } else {
            format!("{v:.1} {}", UNITS[u])
        }
    }

    /// A percentage.
    pub fn pct(&self, p: impl Borrow<f32>) -> String {
        let p = *p.borrow();
        format!("{p:.0} %")
    }

    /// Load averages.
    pub fn load(&self, l: impl Borrow<[f64; 3]>) -> String {
        let l = *l.borrow();
        format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
    }

    /// The last run of a profile.
    pub fn profile(&self, p: &Option<ProfileRun>) -> String {
        match p {
            Some(p) => format!(
                "run #{}, {}: {} objects in {}",
                p.run_id,
                self.ago(p.at_ms),
                p.objects,
                self.dur(p.ms as i64)
            ),
            None => "not in the recent history".into(),
        }
    }
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html", config = "web/askama.toml")]
pub struct Login {
    /// Pre-login CSRF token (also in a cookie).
    pub csrf: String,
    /// Why the last try failed.
    pub message: String,
}

/// The overview.
#[derive(Template)]
#[template(path = "overview.html", config = "web/askama.toml")]
pub struct OverviewPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub v: Overview,
    /// The topology picture (SVG markup, names escaped).
    pub topology: String,
    /// The run history picture (SVG markup, names escaped).
    pub history: String,
}

/// The connectors.
#[derive(Template)]
#[template(path = "connectors.html", config = "web/askama.toml")]
pub struct ConnectorsPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub list: Vec<ConnectorView>,
    /// Per connector (same order), its objects-over-time picture (SVG markup).
    pub objects: Vec<String>,
}

impl ConnectorsPage {
    /// The objects-over-time picture of the connector at `index` in the list.
    pub fn picture(&self, index: impl Borrow<usize>) -> &str {
        self.objects.get(*index.borrow()).map_or("", String::as_str)
    }
}

/// The run history.
#[derive(Template)]
#[template(path = "runs.html", config = "web/askama.toml")]
pub struct RunsPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub list: Vec<RunSummary>,
}

/// One run.
#[derive(Template)]
#[template(path = "run.html", config = "web/askama.toml")]
pub struct RunPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub d: RunDetail,
}

/// Object search.
#[derive(Template)]
#[template(path = "objects.html", config = "web/askama.toml")]
pub struct ObjectsPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub r: SearchResult,
}

/// A metaverse object and its lineage.
#[derive(Template)]
#[template(path = "mv.html", config = "web/askama.toml")]
pub struct MvPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub m: MvView,
}

/// A connector-space object.
#[derive(Template)]
#[template(path = "cs.html", config = "web/askama.toml")]
pub struct CsPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub c: CsView,
}

/// The effective config.
#[derive(Template)]
#[template(path = "config.html", config = "web/askama.toml")]
pub struct ConfigPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub c: ConfigView,
}

/// The host.
#[derive(Template)]
#[template(path = "host.html", config = "web/askama.toml")]
pub struct HostPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub h: HostView,
}

/// The enrolled agents.
#[derive(Template)]
#[template(path = "agents.html", config = "web/askama.toml")]
pub struct AgentsPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Whether the config has an `[agents]` table.
    pub enabled: bool,
    /// The agents.
    pub list: Vec<crate::agent::registry::AgentView>,
}

/// The password form.
#[derive(Template)]
#[template(path = "account.html", config = "web/askama.toml")]
pub struct AccountPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Shortest allowed password.
    pub min_len: usize,
}

/// The result of an action, or an error.
#[derive(Template)]
#[template(path = "message.html", config = "web/askama.toml")]
pub struct MessagePage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Heading.
    pub heading: String,
    /// Text.
    pub text: String,
    /// Whether it is an error.
    pub error: bool,
    /// Where "Back" goes.
    pub back: String,
}

/// The stylesheet, compiled in.
pub const STYLE_CSS: &str = include_str!("../../web/static/style.css");
