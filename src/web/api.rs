//! The JSON API under `/api/` and `/metrics`: the same views as the pages, for scripts.

use std::collections::HashMap;

use super::super::http::{Req, Resp};
use super::super::system::config_view;
use super::super::{metrics, objects, views};
use super::{App, MAX_QUERY, SEARCH_LIMIT, failure};
use crate::model::{CsId, MvId};
use crate::runner::handle::Request;
use crate::store::StoreError;

impl App {
    /// Answers an authenticated API or metrics request.
    pub(super) fn api(
        &self,
        req: &Req,
        post: bool,
        now: i64,
        who: &str,
    ) -> Result<Resp, StoreError> {
        let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let q = req.query_params();
        let body: HashMap<String, String> = if req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            serde_json::from_slice::<HashMap<String, serde_json::Value>>(&req.body)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        } else {
            req.form()
        };
        let not_found = |what: &str| {
            Resp::json(
                404,
                &serde_json::json!({ "error": format!("no such {what}") }),
            )
        };
        let acted = |(status, text): (u16, String)| {
            let key = if status < 300 { "result" } else { "error" };
            Resp::json(status, &serde_json::json!({ key: text }))
        };
        Ok(match (post, segs.as_slice()) {
            (false, ["metrics"]) => {
                let tx = self.read()?;
                let stats = self.stats(&tx, now)?;
                let live = self.handle.status();
                let ok = views::overview(&tx, &self.config(), &live, self.started_ms, now)?.health
                    == "ok";
                let text = metrics::render(
                    &tx,
                    &self.config(),
                    &live,
                    &self.handle.live().totals(),
                    &stats,
                    ok,
                )?;
                // OpenMetrics to whoever asks for it (Prometheus does); the classic text
                // format otherwise, which curl | promtool check metrics takes as it is.
                if req
                    .header("accept")
                    .is_some_and(|a| a.contains("application/openmetrics-text"))
                {
                    Resp::new(
                        200,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        text,
                    )
                } else {
                    Resp::new(
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        metrics::classic_text(&text),
                    )
                }
            }
            (false, ["api", "overview"]) => Resp::json(
                200,
                &views::overview(
                    &self.read()?,
                    &self.config(),
                    &self.handle.status(),
                    self.started_ms,
                    now,
                )?,
            ),
            (false, ["api", "connectors"]) => {
                let tx = self.read()?;
                let stats = self.stats(&tx, now)?;
                Resp::json(200, &views::connectors(&tx, &self.config(), &stats)?)
            }
            (false, ["api", "runs"]) => Resp::json(200, &views::runs(&self.read()?)?),
            (false, ["api", "runs", id]) => match id
                .parse()
                .ok()
                .map(|id| views::run_detail(&self.read()?, id))
                .transpose()?
                .flatten()
            {
                Some(d) => Resp::json(200, &d),
                None => not_found("run"),
            },
            (false, ["api", "objects"]) => {
                let query = q.get("q").cloned().unwrap_or_default();
                if query.chars().count() > MAX_QUERY {
                    return Ok(failure(
                        true,
                        400,
                        &format!("the query is longer than {MAX_QUERY} characters"),
                    ));
                }
                let r = objects::search_for(&self.read()?, &query, SEARCH_LIMIT, &req.gone)?;
                Resp::json(200, &r)
            }
            (false, ["api", "objects", "mv", id]) => match id
                .parse()
                .ok()
                .map(|id| objects::mv_view(&self.read()?, MvId(id)))
                .transpose()?
                .flatten()
            {
                Some(m) => Resp::json(200, &m),
                None => not_found("metaverse object"),
            },
            (false, ["api", "objects", "cs", id]) => match id
                .parse()
                .ok()
                .map(|id| objects::cs_view(&self.read()?, CsId(id)))
                .transpose()?
                .flatten()
            {
                Some(c) => Resp::json(200, &c),
                None => not_found("connector-space object"),
            },
            (false, ["api", "config"]) => Resp::json(
                200,
                &config_view(
                    &self.config(),
                    self.handle.status().staging,
                    &self.certificate,
                ),
            ),
            (false, ["api", "host"]) => Resp::json(200, &self.host.view(&self.config().state_file)),
            (false, ["api", "agents"]) => Resp::json(200, &self.agents_list()),
            (true, ["api", "actions", "revoke-agent"]) => {
                let agent = body.get("agent").cloned().unwrap_or_default();
                acted(self.revoke_agent(&agent, who))
            }
            (true, ["api", "actions", "cycle"]) => {
                let full = body.get("mode").is_some_and(|m| m == "full");
                match self.handle.submit(Request::Cycle {
                    full,
                    who: who.into(),
                }) {
                    Some(_) => Resp::json(202, &serde_json::json!({ "result": "cycle requested" })),
                    None => acted((503, "the runner is shutting down".into())),
                }
            }
            (true, ["api", "actions", "approve"]) => {
                let connector = body.get("connector").cloned().unwrap_or_default();
                acted(self.act(Request::ApproveDeletes {
                    connector,
                    who: who.into(),
                }))
            }
            (true, ["api", "actions", "leave-staging"]) => {
                acted(self.act(Request::LeaveStaging { who: who.into() }))
            }
            _ => not_found("endpoint"),
        })
    }
}
