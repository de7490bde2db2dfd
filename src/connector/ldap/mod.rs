//! The `ad` and `ldap` connectors: Active Directory (Windows or Samba) and other LDAP
//! directories (OpenLDAP, 389 DS), read with paged searches and ranged retrieval, kept
//! current with DirSync (AD) or RFC 4533 syncrepl (LDAP), and written with add, modify,
//! delete and modrdn.
//!
//! The connector is synchronous at its seam (the runner calls it from a blocking thread);
//! inside, ldap3 runs on the connector's own single-threaded tokio runtime.
//!
//! - [`session`]: one bound connection; the narrow search/add/modify/delete/rename interface.
//! - [`import`]: full imports and the delta methods, with their watermarks.
//! - [`export`]: pending exports as LDAP operations, AD passwords and account control.
//! - [`entry`], [`controls`], [`ber`]: wire decoding, controls, BER.
//! - [`scope`]: classes, filters, OUs and the filter group.
//! - [`watch`]: near-real-time mode: change notification, DirSync poll, refreshAndPersist.

pub mod ber;
pub mod change_ldif;
pub mod controls;
pub mod entry;
mod export;
mod import;
mod pipe;
pub mod scope;
pub mod session;
pub mod watch;
pub mod wire;

use std::sync::Arc;

use tokio::runtime::Runtime;

use super::{
    Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView, Watcher,
};
use crate::config::{LdapConfig, TlsVerify};
use crate::model::{ConnectorName, ExportItem, ExportOutcome, Watermark};
use entry::Mapper;
use scope::Scope;
use session::{Failure, Session};

/// A connector error for a failure, naming the directory (usable while parts of the
/// connector are borrowed).
fn connector_error(name: &ConnectorName, url: &str, f: Failure) -> ConnectorError {
    let kind = match &f {
        Failure::Unreachable(_) => ConnectorErrorKind::Unreachable,
        Failure::BadData(_) => ConnectorErrorKind::BadData,
        Failure::Refused { .. } => ConnectorErrorKind::Unsupported,
    };
    ConnectorError {
        connector: name.clone(),
        kind,
        message: format!("{url}: {f}"),
    }
}

/// One `ad` or `ldap` connector.
pub struct LdapConnector {
    name: ConnectorName,
    cfg: LdapConfig,
    rt: Option<Arc<Runtime>>,
    session: Option<Session>,
    mapper: Mapper,
    scope: Scope,
}

impl LdapConnector {
    /// A connector for these settings; nothing is contacted until it is used.
    pub fn new(name: ConnectorName, cfg: LdapConfig) -> Self {
        LdapConnector {
            mapper: Mapper::new(&cfg),
            scope: Scope::new(&cfg),
            name,
            cfg,
            rt: None,
            session: None,
        }
    }

    fn error(&self, kind: ConnectorErrorKind, message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            connector: self.name.clone(),
            kind,
            message: message.into(),
        }
    }

    /// A connector error for a failure, naming the directory.
    fn fail(&self, f: Failure) -> ConnectorError {
        connector_error(&self.name, &self.cfg.url, f)
    }

    fn runtime(&mut self) -> Result<Arc<Runtime>, ConnectorError> {
        if let Some(rt) = &self.rt {
            return Ok(rt.clone());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                self.error(
                    ConnectorErrorKind::Unreachable,
                    format!("cannot start the LDAP runtime: {e}"),
                )
            })?;
        let rt = Arc::new(rt);
        self.rt = Some(rt.clone());
        Ok(rt)
    }

    /// The open session, connecting and binding first when there is none.
    async fn session<'s>(
        session: &'s mut Option<Session>,
        cfg: &LdapConfig,
    ) -> Result<&'s mut Session, Failure> {
        if session.is_none() {
            if cfg.tls_verify == TlsVerify::DangerAcceptInvalidCerts {
                tracing::warn!(
                    url = %cfg.url,
                    "tls_verify = danger_accept_invalid_certs: the server's certificate is NOT \
                     checked; anyone on the network path can read the bind password"
                );
            }
            *session = Some(Session::connect(cfg).await?);
        }
        session
            .as_mut()
            .ok_or_else(|| Failure::Unreachable("no session".into()))
    }
}

impl Connector for LdapConnector {
    fn name(&self) -> &ConnectorName {
        &self.name
    }

    fn check(&mut self) -> Result<(), ConnectorError> {
        let rt = self.runtime()?;
        let base = self.cfg.base_dn.as_str().to_string();
        let r = rt.block_on(async {
            let s = Self::session(&mut self.session, &self.cfg).await?;
            s.read(&base, &["1.1".to_string()], Vec::new()).await
        });
        match r {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(self.error(
                ConnectorErrorKind::Unsupported,
                format!("{}: base_dn {} does not exist", self.cfg.url, base),
            )),
            Err(f) => {
                self.session = None;
                Err(self.fail(f))
            }
        }
    }

    fn import(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        let rt = self.runtime()?;
        // The directory is read on a worker thread while this one writes to the store, so
        // network, decoding and the store's commits overlap instead of taking turns.
        let (tx, rx) = std::sync::mpsc::sync_channel::<pipe::Msg>(pipe::DEPTH);
        let failed = pipe::Failed::default();
        let r = std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let mut remote = pipe::ChannelSink::new(tx, failed.clone());
                rt.block_on(self.import_async(watermark, full, &mut remote))
            });
            pipe::drain(rx, sink, &failed);
            worker.join()
        });
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(self.error(
                ConnectorErrorKind::BadData,
                format!("{}: the import stopped unexpectedly", self.cfg.url),
            )),
        };
        if r.is_err() {
            // A broken connection must not be reused by the next run.
            self.session = None;
        }
        r
    }

    fn import_one(
        &mut self,
        which: &crate::connector::OneObject,
        sink: &mut dyn ImportSink,
    ) -> Result<bool, ConnectorError> {
        let rt = self.runtime()?;
        let r = rt.block_on(self.import_one_async(which, sink));
        if r.is_err() {
            self.session = None;
        }
        r
    }

    fn export(&mut self, items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        let rt = self.runtime()?;
        let r = rt.block_on(self.export_async(items));
        if r.iter()
            .any(|o| matches!(o, ExportOutcome::NotTried { .. }))
        {
            self.session = None;
        }
        Ok(r)
    }

    fn finish_export(
        &mut self,
        _space: &dyn SpaceView,
    ) -> Result<Option<Watermark>, ConnectorError> {
        Ok(None)
    }

    fn watcher(&self) -> Option<Box<dyn Watcher>> {
        self.cfg.watch.then(|| {
            Box::new(watch::LdapWatcher::new(self.name.clone(), self.cfg.clone()))
                as Box<dyn Watcher>
        })
    }
}
