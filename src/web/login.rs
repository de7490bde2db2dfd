//! Logging in and changing the admin password: the login form and its CSRF cookie, the
//! throttle's verdicts (see [`super::super::throttle`]), the device cookie a successful
//! login hands out, and answers that take as long for a wrong user name as for a wrong
//! password.

use std::collections::HashMap;

use askama::Template;

use super::super::auth::{hash_password, random_token, same_secret, verify_password};
use super::super::http::{Req, Resp, cookie};
use super::super::pages::Login;
use super::super::quiet_log::Event;
use super::super::throttle::{DEVICE_COOKIE, DEVICE_TTL_MS, Verdict};
use super::{App, LOGIN_COOKIE, SESSION_COOKIE};
use crate::runner::handle::Request;

/// The only account.
const ADMIN: &str = "admin";

impl App {
    pub(super) fn login_form(&self, req: &Req, message: &str, status: u16) -> Resp {
        // Keep a well-formed token the browser already has, so that two tabs (or a second
        // request) do not invalidate each other's form.
        let existing = req.cookie(LOGIN_COOKIE).filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        let Some(token) = existing.or_else(|| random_token(32).ok()) else {
            return Resp::text(500, "the OS random source failed");
        };
        let page = Login {
            csrf: token.clone(),
            message: message.into(),
        };
        match page.render() {
            Ok(html) => {
                Resp::html(status, html).with("set-cookie", cookie(LOGIN_COOKIE, &token, 3600))
            }
            Err(e) => Resp::text(500, &format!("template: {e}")),
        }
    }

    pub(super) fn login(&self, req: &Req, now: i64) -> Resp {
        let form = req.form();
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let cookie_token = req.cookie(LOGIN_COOKIE).unwrap_or_default();
        if cookie_token.is_empty()
            || !same_secret(cookie_token.as_bytes(), field("csrf").as_bytes())
        {
            return self.login_form(req, "The form expired; please try again.", 403);
        }
        let device = req.cookie(DEVICE_COOKIE);
        let client = self.auth.login_client(device.as_deref(), req.peer, now);
        let hold_ms = match self.auth.login_begin(&client, now) {
            Verdict::Go { hold_ms } => hold_ms,
            Verdict::Wait { retry_after_s } => {
                self.warn_event(
                    Event::ThrottledLogin,
                    req.peer,
                    "login refused: too many failed attempts",
                );
                return self
                    .login_form(
                        req,
                        &format!("Too many failed logins; try again in {retry_after_s} s."),
                        429,
                    )
                    .with("retry-after", retry_after_s.to_string());
            }
        };
        let stored = match self.read().and_then(|tx| tx.admin_password()) {
            Ok(Some(p)) => p,
            Ok(None) => {
                return self.login_form(
                    req,
                    "No admin password is set yet; set one with `bridgehead passwd`.",
                    503,
                );
            }
            Err(e) => return Resp::text(500, &format!("the state file could not be read: {e}")),
        };
        let Some(slot) = self.auth.hashing_slot() else {
            return self
                .login_form(req, "The server is busy; please try again.", 503)
                .with("retry-after", "1");
        };
        // Both checks always run: a wrong user name costs as long as a wrong password, so
        // the answer time does not tell which one was wrong.
        let password_ok = verify_password(&stored.phc, field("password"));
        let user_ok = same_secret(field("user").as_bytes(), ADMIN.as_bytes());
        drop(slot);
        if !(password_ok && user_ok) {
            self.warn_event(Event::FailedLogin, req.peer, "failed login");
            return self
                .login_form(req, "Wrong user or password.", 401)
                .held(hold_ms);
        }
        match self.auth.login_succeeded(&client, now) {
            Ok((id, device)) => {
                tracing::info!(peer = %req.peer, "admin logged in");
                Resp::see_other("/")
                    .with("set-cookie", cookie(SESSION_COOKIE, &id, 12 * 3600))
                    .with(
                        "set-cookie",
                        cookie(DEVICE_COOKIE, &device, DEVICE_TTL_MS / 1000),
                    )
                    .with("set-cookie", cookie(LOGIN_COOKIE, "", 0))
                    .held(hold_ms)
            }
            Err(e) => Resp::text(500, &e),
        }
    }

    pub(super) fn change_password(
        &self,
        req: &Req,
        form: &HashMap<String, String>,
        session: &str,
        now: i64,
    ) -> (u16, String) {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if let Err(t) = self.auth.change_begin(session, now) {
            self.warn_event(
                Event::ThrottledLogin,
                req.peer,
                "password change refused: too many wrong current passwords",
            );
            return (
                429,
                format!(
                    "Too many wrong current passwords; try again in {} s.",
                    t.retry_after_s
                ),
            );
        }
        let current = match self.read().and_then(|tx| tx.admin_password()) {
            Ok(Some(p)) => p,
            Ok(None) => return (409, "no password is set".into()),
            Err(e) => return (500, e.to_string()),
        };
        let Some(slot) = self.auth.hashing_slot() else {
            return (503, "the server is busy; please try again".into());
        };
        let current_ok = verify_password(&current.phc, field("current"));
        drop(slot);
        if !current_ok {
            self.warn_event(
                Event::WrongCurrentPassword,
                req.peer,
                "password change: wrong current password",
            );
            return (403, "the current password is wrong".into());
        }
        self.auth.change_succeeded(session);
        if field("new") != field("again") {
            return (400, "the two new passwords differ".into());
        }
        let phc = match hash_password(field("new")) {
            Ok(p) => p,
            Err(e) => return (400, e),
        };
        self.act(Request::SetAdminPassword {
            phc,
            who: "status page".into(),
        })
    }
}
