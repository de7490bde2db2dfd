//! The pending-exports review of one connector: a page, and the same list to download as
//! JSON or, for `ad`/`ldap` targets, as LDIF change records. The runner's review
//! ([`crate::runner::pending`]) builds both from a read snapshot; this only renders.

use askama::Template;

use super::http::Resp;
use super::pages::{Fmt, Nav};
use crate::config::Config;
use crate::runner::RunError;
use crate::runner::pending::{self, PendingList};
use crate::store::{ReadTx, StoreError};

/// The review page.
#[derive(Template)]
#[template(path = "pending.html", config = "web/askama.toml")]
pub struct PendingPage {
    /// Frame.
    pub nav: Nav,
    /// Helpers.
    pub fmt: Fmt,
    /// Data.
    pub p: PendingList,
    /// Whether an LDIF download exists (ad and ldap targets).
    pub ldif: bool,
}

/// What a request for the review gets.
pub enum Shown {
    /// The list, to render as the page.
    Page(PendingList),
    /// A download, ready to send.
    File(Resp),
    /// No such connector, or a format it does not have: (status, text).
    Refused(u16, String),
}

fn refused(e: RunError) -> Result<Shown, StoreError> {
    match e {
        RunError::Store(e) => Err(e),
        RunError::UnknownConnector(name) => Ok(Shown::Refused(
            404,
            format!("there is no connector {name:?}"),
        )),
        other => Ok(Shown::Refused(400, other.to_string())),
    }
}

/// The review of `name` as `format`: `html` (default), `json` or `ldif`.
pub fn show(tx: &ReadTx, config: &Config, name: &str, format: &str) -> Result<Shown, StoreError> {
    let attachment = |ext: &str| format!("attachment; filename=\"{name}-pending.{ext}\"");
    match format {
        "ldif" => match pending::ldif(tx, config, name) {
            Ok(text) => Ok(Shown::File(
                Resp::new(200, "text/plain; charset=utf-8", text)
                    .with("content-disposition", attachment("ldif")),
            )),
            Err(e) => refused(e),
        },
        "json" => match pending::list(tx, config, name) {
            Ok(list) => Ok(Shown::File(
                Resp::json(200, &list).with("content-disposition", attachment("json")),
            )),
            Err(e) => refused(e),
        },
        "html" => match pending::list(tx, config, name) {
            Ok(list) => Ok(Shown::Page(list)),
            Err(e) => refused(e),
        },
        other => Ok(Shown::Refused(
            400,
            format!("unknown format {other:?}: html, json or ldif"),
        )),
    }
}
