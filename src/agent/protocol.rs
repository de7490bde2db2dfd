//! What the listener answers, decided without IO: an owned request in (path, version
//! header, body, the agent its certificate names), a status and JSON out. Version 1 of the
//! agent protocol:
//!
//! | request | who | answer |
//! |---|---|---|
//! | `POST /v1/enroll` `{token, csr, host, version}` | anyone | `{id, group, certificate, ca}` |
//! | `POST /v1/hello` | an enrolled agent | `{id, group, version, heartbeat_ms}`; 426 when too old |
//! | `POST /v1/heartbeat` | an enrolled agent after hello | `{}`; 409 without hello |

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ca::AgentCa;
use super::registry::{AgentRecord, Registry};
use super::{VERSION, tokens, version_refusal};

/// What an enrolling agent sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time token.
    pub token: String,
    /// A PEM certificate request for the agent's key.
    pub csr: String,
    /// The agent's host name (shown on the status page).
    pub host: String,
    /// The agent's version.
    pub version: String,
}

/// What an enrolled agent gets back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollAnswer {
    /// Its id.
    pub id: String,
    /// Its group.
    pub group: String,
    /// Its client certificate (PEM).
    pub certificate: String,
    /// The agent CA (PEM), its trust root for the listener from now on.
    pub ca: String,
}

/// The answer to a hello.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloAnswer {
    /// The agent's id as the appliance knows it.
    pub id: String,
    /// Its group.
    pub group: String,
    /// The appliance's version.
    pub version: String,
    /// How often to send a heartbeat.
    pub heartbeat_ms: u64,
}

/// One request as the listener hands it over.
pub struct Request {
    /// The path.
    pub path: String,
    /// Whether it is a POST.
    pub post: bool,
    /// The sender's version header.
    pub version: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// The peer's address.
    pub peer: String,
    /// Whether the connection presented a client certificate.
    pub presented: bool,
    /// The enrolled agent the connection's certificate names (checked at the handshake).
    pub agent: Option<AgentRecord>,
}

/// A status and a JSON body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
    /// Set on a successful hello: the agent now connected (for the connection's end).
    pub hello: Option<(String, i64)>,
}

fn op_name(op: &super::jobs::Op) -> &'static str {
    match op {
        super::jobs::Op::Check => "check",
        super::jobs::Op::Import { full: true, .. } => "full import",
        super::jobs::Op::Import { .. } => "delta import",
        super::jobs::Op::Export { .. } => "export",
        super::jobs::Op::Watch => "watch",
    }
}

fn refuse(status: u16, text: impl Into<String>) -> Answer {
    Answer {
        status,
        body: serde_json::json!({ "error": text.into() }),
        hello: None,
    }
}

fn ok(body: serde_json::Value) -> Answer {
    Answer {
        status: 200,
        body,
        hello: None,
    }
}

/// The appliance's side of the protocol.
pub struct Appliance {
    /// The agent folder beside the state file.
    pub dir: PathBuf,
    /// The agent CA.
    pub ca: Arc<AgentCa>,
    /// The register.
    pub registry: Registry,
    /// The heartbeat interval agents are told.
    pub heartbeat_ms: u64,
    /// The connector jobs waiting for or leased to agents.
    pub jobs: super::jobs::Jobs,
}

impl Appliance {
    /// Answers one request.
    pub fn answer(&self, req: Request) -> Answer {
        if !req.post {
            return refuse(405, "the agent protocol uses POST");
        }
        match (req.path.as_str(), &req.agent) {
            ("/v1/enroll", _) => self.enroll(&req),
            ("/v1/hello" | "/v1/heartbeat", None) if req.presented => refuse(
                403,
                "this agent's certificate was revoked or is not known to this appliance",
            ),
            ("/v1/hello" | "/v1/heartbeat", None) => refuse(
                401,
                "no client certificate: enrol first with `bridgehead agent --enroll`",
            ),
            ("/v1/hello", Some(agent)) => self.hello(&req, agent),
            ("/v1/heartbeat", Some(agent)) => {
                if self.registry.heartbeat(&agent.id) {
                    ok(serde_json::json!({}))
                } else {
                    refuse(409, "no hello on record for this agent: say hello first")
                }
            }
            (_, None) if req.presented => refuse(
                403,
                "this agent's certificate was revoked or is not known to this appliance",
            ),
            (_, None) => refuse(401, "no client certificate: enrol first"),
            ("/v1/work", Some(agent)) => match self.jobs.take(&agent.group, &agent.id) {
                Some(job) => {
                    self.registry.job_started(
                        &agent.id,
                        job.id,
                        format!("{} ({})", job.connector, op_name(&job.op)),
                    );
                    ok(serde_json::to_value(job).unwrap_or_default())
                }
                None => Answer {
                    status: 204,
                    body: serde_json::Value::Null,
                    hello: None,
                },
            },
            (path, Some(agent)) => self.job_message(path, &req.body, agent),
        }
    }

    /// `/v1/job/ID/changes|ask|done` from the agent holding job ID's lease.
    fn job_message(&self, path: &str, body: &[u8], agent: &AgentRecord) -> Answer {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (id, what) = match parts.as_slice() {
            ["v1", "job", id, what] => match id.parse::<u64>() {
                Ok(id) => (id, *what),
                Err(_) => return refuse(404, format!("no job {id}")),
            },
            _ => return refuse(404, format!("the agent protocol has no {path}")),
        };
        let bad = |e: serde_json::Error| refuse(400, format!("job {id}: {what}: {e}"));
        let result = match what {
            "changes" => match serde_json::from_slice(body) {
                Ok(changes) => self
                    .jobs
                    .changes(id, &agent.id, changes)
                    .map(|()| serde_json::json!({})),
                Err(e) => return bad(e),
            },
            "ask" => match serde_json::from_slice(body) {
                Ok(ask) => self.jobs.ask(id, &agent.id, ask),
                Err(e) => return bad(e),
            },
            "event" => match serde_json::from_slice(body) {
                Ok(event) => self
                    .jobs
                    .event(id, &agent.id, event)
                    .map(|()| serde_json::json!({})),
                Err(e) => return bad(e),
            },
            "outcomes" => match serde_json::from_slice(body) {
                Ok(outcomes) => self
                    .jobs
                    .outcomes(id, &agent.id, outcomes)
                    .map(|()| serde_json::json!({})),
                Err(e) => return bad(e),
            },
            "done" => match serde_json::from_slice(body) {
                Ok(outcome) => {
                    self.registry.job_ended(&agent.id, id);
                    self.jobs
                        .done(id, &agent.id, outcome)
                        .map(|()| serde_json::json!({}))
                }
                Err(e) => return bad(e),
            },
            _ => return refuse(404, format!("the agent protocol has no {path}")),
        };
        match result {
            Ok(v) => ok(v),
            Err(e) => refuse(409, e),
        }
    }

    fn enroll(&self, req: &Request) -> Answer {
        let e: EnrollRequest = match serde_json::from_slice(&req.body) {
            Ok(e) => e,
            Err(e) => return refuse(400, format!("not an enrolment request: {e}")),
        };
        if let Some(why) = version_refusal(Some(&e.version)) {
            return refuse(426, why);
        }
        let now = self.registry.now_ms();
        let group = match tokens::redeem(&self.dir, &e.token, now) {
            Ok(g) => g,
            Err(why) => {
                tracing::warn!(peer = %req.peer, host = %e.host, "agent enrolment refused: {why}");
                return refuse(403, why.to_string());
            }
        };
        let id = format!("agent-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let cert = match self.ca.issue_client(&e.csr, &id, &group) {
            Ok(c) => c,
            Err(why) => return refuse(400, why),
        };
        let der = match rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes()) {
            Ok(d) => d,
            Err(e) => return refuse(500, format!("the issued certificate: {e}")),
        };
        let der: rustls::pki_types::CertificateDer<'_> = der;
        let host: String = e.host.chars().take(255).collect();
        let record = AgentRecord {
            id: id.clone(),
            group: group.clone(),
            fingerprint: super::fingerprint(der.as_ref()),
            host: host.clone(),
            enrolled_ms: now,
            revoked: None,
        };
        if let Err(why) = self.registry.add(record) {
            return refuse(500, why);
        }
        tracing::info!(agent = %id, %group, %host, peer = %req.peer, "agent enrolled");
        let body = EnrollAnswer {
            id,
            group,
            certificate: cert,
            ca: self.ca.cert_pem().to_string(),
        };
        ok(serde_json::to_value(body).unwrap_or_default())
    }

    fn hello(&self, req: &Request, agent: &AgentRecord) -> Answer {
        if let Some(why) = version_refusal(req.version.as_deref()) {
            tracing::warn!(agent = %agent.id, peer = %req.peer, "agent refused: {why}");
            return refuse(426, why);
        }
        let version = req.version.clone().unwrap_or_default();
        self.registry.connected(&agent.id, &version, &req.peer);
        self.jobs.agent_back(&agent.id);
        let since = self.registry.live(&agent.id).map_or(0, |l| l.connected_ms);
        tracing::info!(agent = %agent.id, group = %agent.group, %version, peer = %req.peer, "agent connected");
        let body = HelloAnswer {
            id: agent.id.clone(),
            group: agent.group.clone(),
            version: VERSION.to_string(),
            heartbeat_ms: self.heartbeat_ms,
        };
        Answer {
            hello: Some((agent.id.clone(), since)),
            ..ok(serde_json::to_value(body).unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::FixedClock;

    fn appliance(dir: &std::path::Path) -> Appliance {
        Appliance {
            dir: dir.to_path_buf(),
            ca: Arc::new(AgentCa::load_or_create(dir).unwrap()),
            registry: Registry::open(dir, Arc::new(FixedClock::at(5_000)), 1_000).unwrap(),
            heartbeat_ms: 1_000,
            jobs: Default::default(),
        }
    }

    fn csr() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
    }

    fn post(path: &str, body: serde_json::Value, agent: Option<AgentRecord>, v: &str) -> Request {
        Request {
            path: path.into(),
            post: true,
            version: Some(v.into()),
            body: serde_json::to_vec(&body).unwrap(),
            peer: "127.0.0.1:1".into(),
            presented: agent.is_some(),
            agent,
        }
    }

    fn enroll_body(token: &str, version: &str) -> serde_json::Value {
        serde_json::json!({ "token": token, "csr": csr(), "host": "h1", "version": version })
    }

    #[test]
    fn enrolment_then_hello_and_heartbeat() {
        let d = tempfile::tempdir().unwrap();
        let a = appliance(d.path());
        let token = tokens::create(d.path(), "fab", 5_000, 60_000).unwrap();
        let r = a.answer(post(
            "/v1/enroll",
            enroll_body(&token, VERSION),
            None,
            VERSION,
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        let e: EnrollAnswer = serde_json::from_value(r.body).unwrap();
        assert_eq!(e.group, "fab");
        assert!(e.ca.contains("BEGIN CERTIFICATE"));
        let again = a.answer(post(
            "/v1/enroll",
            enroll_body(&token, VERSION),
            None,
            VERSION,
        ));
        assert_eq!(again.status, 403);
        assert!(
            again.body["error"]
                .as_str()
                .unwrap()
                .contains("already used")
        );

        let agent = a.registry.list().into_iter().next().unwrap();
        let record = AgentRecord {
            id: agent.id.clone(),
            group: agent.group.clone(),
            fingerprint: String::new(),
            host: agent.host.clone(),
            enrolled_ms: 0,
            revoked: None,
        };
        let hb = a.answer(post(
            "/v1/heartbeat",
            serde_json::json!({}),
            Some(record.clone()),
            VERSION,
        ));
        assert_eq!(hb.status, 409);
        let h = a.answer(post(
            "/v1/hello",
            serde_json::json!({}),
            Some(record.clone()),
            VERSION,
        ));
        assert_eq!(h.status, 200, "{}", h.body);
        assert_eq!(h.hello.as_ref().unwrap().0, agent.id);
        let hb = a.answer(post(
            "/v1/heartbeat",
            serde_json::json!({}),
            Some(record),
            VERSION,
        ));
        assert_eq!(hb.status, 200);
        assert_eq!(a.registry.list()[0].state, "connected");
        // Without a certificate only enrolment is open.
        let anon = a.answer(post("/v1/hello", serde_json::json!({}), None, VERSION));
        assert_eq!(anon.status, 401);
    }

    #[test]
    fn a_too_old_agent_is_told_the_version_it_needs() {
        let d = tempfile::tempdir().unwrap();
        let a = appliance(d.path());
        let token = tokens::create(d.path(), "fab", 5_000, 60_000).unwrap();
        let r = a.answer(post(
            "/v1/enroll",
            enroll_body(&token, "0.0.1"),
            None,
            "0.0.1",
        ));
        assert_eq!(r.status, 426);
        let text = r.body["error"].as_str().unwrap().to_string();
        assert!(
            text.contains(&format!(
                "needs agent version {}",
                super::super::MIN_AGENT_VERSION
            )),
            "{text}"
        );
        // The token was not spent by a refused version.
        let r = a.answer(post(
            "/v1/enroll",
            enroll_body(&token, VERSION),
            None,
            VERSION,
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        let record = AgentRecord {
            id: "x".into(),
            group: "fab".into(),
            fingerprint: String::new(),
            host: String::new(),
            enrolled_ms: 0,
            revoked: None,
        };
        let h = a.answer(post(
            "/v1/hello",
            serde_json::json!({}),
            Some(record),
            "0.0.1",
        ));
        assert_eq!(h.status, 426);
        assert!(h.hello.is_none());
    }

    #[test]
    fn an_expired_token_enrols_nothing() {
        let d = tempfile::tempdir().unwrap();
        let a = appliance(d.path());
        let token = tokens::create(d.path(), "fab", 0, 1_000).unwrap();
        let r = a.answer(post(
            "/v1/enroll",
            enroll_body(&token, VERSION),
            None,
            VERSION,
        ));
        assert_eq!(r.status, 403);
        assert!(r.body["error"].as_str().unwrap().contains("expired"));
        assert!(a.registry.list().is_empty());
    }
}
