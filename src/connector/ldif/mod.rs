//! The `ldif` connector: a source reads an LDIF file (the watermark is its SHA-256 digest,
//! so an unchanged file costs one read and no sync work); a target is rewritten whole after
//! each export, atomically (write, fsync, rename), and read back to confirm.

pub mod format;

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::{LdifConfig, LdifMode};
use crate::connector::{
    Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView,
};
use crate::model::{
    Anchor, AttrName, Attributes, ConnectorName, CsObject, Dn, ExportItem, ExportKind,
    ExportOutcome, ImportChange, ImportedObject, RefTarget, Value, Watermark,
};
use format::{LdifEntry, LdifReader, LdifValue};

/// Namespace for generated target anchors: v5(namespace, connector + DN at creation), so a
/// re-run after a crash generates the same ids.
const ANCHOR_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6b1f_3c2e_9a4d_4f7b_8e21_5d0c_a9b3_7e14);

/// An LDIF file connector.
pub struct LdifConnector {
    name: ConnectorName,
    cfg: LdifConfig,
}

/// A reader that hashes what passes through it, so the digest costs no second read.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

impl LdifConnector {
    /// A connector for one configured file.
    pub fn new(name: ConnectorName, cfg: LdifConfig) -> Self {
        LdifConnector { name, cfg }
    }

    fn err(&self, kind: ConnectorErrorKind, message: String) -> ConnectorError {
        ConnectorError {
            connector: self.name.clone(),
            kind,
            message,
        }
    }

    fn digest(path: &Path) -> std::io::Result<Vec<u8>> {
        let mut r = HashingReader {
            inner: File::open(path)?,
            hash: Sha256::new(),
        };
        std::io::copy(&mut r, &mut std::io::sink())?;
        Ok(r.hash.finalize().to_vec())
    }

    /// Turns one LDIF entry into an imported object.
    fn convert(&self, entry: LdifEntry) -> Result<ImportedObject, String> {
        let at = |what: String| format!("{} line {}: {what}", self.cfg.path.display(), entry.line);
        let dn = Dn::parse(&entry.dn).map_err(|e| at(e.to_string()))?;
        let mut attrs = Attributes::new();
        let mut anchor = None;
        let mut object_class = None;
        for (name, value) in entry.attrs {
            let base = name.split(';').next().unwrap_or(&name);
            let attr = AttrName::new(base);
            let is = |list: &[AttrName]| list.iter().any(|a| a == &attr);
            if attr == self.cfg.anchor {
                anchor = Some(match &value {
                    LdifValue::Text(t) => t.as_bytes().to_vec(),
                    LdifValue::Bytes(b) => b.clone(),
                });
            }
            let v = if is(&self.cfg.reference_attributes) {
                let text = match value {
                    LdifValue::Text(t) => t,
                    LdifValue::Bytes(b) => String::from_utf8(b)
                        .map_err(|_| at(format!("{base}: a DN value is not UTF-8")))?,
                };
                let target = Dn::parse(&text).map_err(|e| at(format!("{base}: {e}")))?;
                Value::Reference(RefTarget::Dn(target))
            } else if is(&self.cfg.binary_attributes) {
                Value::Binary(match value {
                    LdifValue::Text(t) => t.into_bytes(),
                    LdifValue::Bytes(b) => b,
                })
            } else {
                match value {
                    LdifValue::Text(t) => Value::String(t),
                    LdifValue::Bytes(b) => match String::from_utf8(b) {
                        Ok(s) => Value::String(s),
                        Err(e) => Value::Binary(e.into_bytes()),
                    },
                }
            };
            if attr.is("objectClass") {
                object_class = Some(v.to_text());
            }
            attrs.add(&attr, v);
        }
        let anchor = anchor.ok_or_else(|| {
            at(format!(
                "entry {} has no {} (the anchor attribute)",
                entry.dn, self.cfg.anchor
            ))
        })?;
        let object_class =
            object_class.ok_or_else(|| at(format!("entry {} has no objectClass", entry.dn)))?;
        Ok(ImportedObject {
            anchor: Anchor::new(anchor),
            dn,
            object_class,
            attrs,
        })
    }

    fn write_file(&self, space: &dyn SpaceView) -> Result<Vec<u8>, String> {
        let path = &self.cfg.path;
        let tmp = path.with_extension("ldif.tmp");
        let file =
            File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut hash = Sha256::new();
        let mut w = BufWriter::new(HashingWriter {
            inner: file,
            hash: &mut hash,
        });
        let io = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
        writeln!(w, "version: 1").map_err(io)?;
        writeln!(w).map_err(io)?;
        let mut failure = None;
        let anchor_attr = self.cfg.anchor.clone();
        space.for_each(&mut |obj: &CsObject| {
            if failure.is_some() {
                return;
            }
            if let Err(e) = write_object(&mut w, obj, &anchor_attr) {
                failure = Some(io(e));
            }
        })?;
        if let Some(f) = failure {
            return Err(f);
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?.inner;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, path)
            .map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
        // The rename is durable only once the folder is synced.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(hash.finalize().to_vec())
    }
}

struct HashingWriter<'a, W> {
    inner: W,
    hash: &'a mut Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A 128-bit fingerprint of a value, for duplicate detection.
fn fingerprint(bytes: &[u8]) -> u128 {
    let d = Sha256::digest(bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    u128::from_le_bytes(out)
}

/// The anchor as the value the file holds: text when it is text (a UUID), else bytes.
fn anchor_value(anchor: &[u8]) -> Value {
    match std::str::from_utf8(anchor) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => Value::Binary(anchor.to_vec()),
    }
}

fn ldif_value(v: &Value) -> LdifValue {
    match v {
        Value::Binary(b) => LdifValue::Bytes(b.clone()),
        other => LdifValue::Text(other.to_text()),
    }
}

fn write_object(w: &mut impl Write, obj: &CsObject, anchor_attr: &AttrName) -> std::io::Result<()> {
    let mut owned: Vec<(String, LdifValue)> = Vec::with_capacity(obj.attrs.len() + 2);
    if obj.attrs.get("objectClass").is_none() {
        owned.push((
            "objectClass".into(),
            LdifValue::Text(obj.object_class.clone()),
        ));
    }
    if obj.attrs.get(anchor_attr.key()).is_none() {
        if let Some(a) = &obj.anchor {
            let v = match std::str::from_utf8(a.as_bytes()) {
                Ok(s) => LdifValue::Text(s.to_string()),
                Err(_) => LdifValue::Bytes(a.as_bytes().to_vec()),
            };
            owned.push((anchor_attr.as_str().to_string(), v));
        }
    }
    for (name, values) in obj.attrs.iter() {
        for v in values {
            owned.push((name.as_str().to_string(), ldif_value(v)));
        }
    }
    let refs: Vec<(&str, &LdifValue)> = owned.iter().map(|(n, v)| (n.as_str(), v)).collect();
    format::write_entry(w, obj.dn.as_str(), &refs)
}

impl Connector for LdifConnector {
    fn name(&self) -> &ConnectorName {
        &self.name
    }

    fn check(&mut self) -> Result<(), ConnectorError> {
        let path = &self.cfg.path;
        match self.cfg.mode {
            LdifMode::Source => File::open(path).map(|_| ()).map_err(|e| {
                self.err(
                    ConnectorErrorKind::Unreachable,
                    format!("cannot read {}: {e}", path.display()),
                )
            }),
            LdifMode::Target => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                match std::fs::metadata(dir) {
                    Ok(m) if m.is_dir() && !m.permissions().readonly() => Ok(()),
                    Ok(_) => Err(self.err(
                        ConnectorErrorKind::Unreachable,
                        format!("{} is not a writable folder", dir.display()),
                    )),
                    Err(e) => Err(self.err(
                        ConnectorErrorKind::Unreachable,
                        format!("cannot use folder {}: {e}", dir.display()),
                    )),
                }
            }
        }
    }

    fn import(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        let path = self.cfg.path.clone();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && self.cfg.mode == LdifMode::Target =>
            {
                // A target not written yet holds nothing.
                return Ok(ImportEnd {
                    watermark: None,
                    complete: true,
                });
            }
            Err(e) => {
                return Err(self.err(
                    ConnectorErrorKind::Unreachable,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        // Only a regular file has an end to hash up to; anything else (a device, a pipe)
        // is read through the bounded reader, whose limits end it.
        let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        if !full && regular {
            if let Some(w) = watermark {
                let digest = Self::digest(&path).map_err(|e| {
                    self.err(
                        ConnectorErrorKind::Unreachable,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                if digest == w.0 {
                    return Ok(ImportEnd {
                        watermark: Some(w.clone()),
                        complete: false,
                    });
                }
            }
        }
        let mut hashing = HashingReader {
            inner: file,
            hash: Sha256::new(),
        };
        // 128-bit fingerprints instead of the values: a million entries take 32 MB, not
        // hundreds, and two different values share one with odds of about 10^-27.
        let mut seen_anchor: HashSet<u128> = HashSet::new();
        let mut seen_dn: HashSet<u128> = HashSet::new();
        {
            let reader: Box<dyn BufRead> =
                Box::new(BufReader::with_capacity(1 << 16, &mut hashing));
            for entry in LdifReader::new(reader) {
                let entry = entry.map_err(|e| {
                    self.err(
                        ConnectorErrorKind::BadData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                let line = entry.line;
                let obj = self
                    .convert(entry)
                    .map_err(|m| self.err(ConnectorErrorKind::BadData, m))?;
                if !seen_anchor.insert(fingerprint(obj.anchor.as_bytes())) {
                    return Err(self.err(
                        ConnectorErrorKind::BadData,
                        format!(
                            "{} line {line}: {} repeats anchor {} of an earlier entry",
                            path.display(),
                            obj.dn,
                            obj.anchor
                        ),
                    ));
                }
                if !seen_dn.insert(fingerprint(obj.dn.norm().as_bytes())) {
                    return Err(self.err(
                        ConnectorErrorKind::BadData,
                        format!(
                            "{} line {line}: DN {} appears twice",
                            path.display(),
                            obj.dn
                        ),
                    ));
                }
                sink.push(ImportChange::Upsert(obj))
                    .map_err(|m| self.err(ConnectorErrorKind::Unsupported, m))?;
            }
        }
        Ok(ImportEnd {
            watermark: Some(Watermark(hashing.hash.finalize().to_vec())),
            complete: true,
        })
    }

    fn import_one(
        &mut self,
        which: &crate::connector::OneObject,
        sink: &mut dyn ImportSink,
    ) -> Result<bool, ConnectorError> {
        let path = self.cfg.path.clone();
        let unreadable = |e: std::io::Error| {
            self.err(
                ConnectorErrorKind::Unreachable,
                format!("cannot read {}: {e}", path.display()),
            )
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(unreadable(e)),
        };
        // A file has no index: read it through, converting only the entry asked for.
        for entry in LdifReader::new(BufReader::with_capacity(1 << 16, file)) {
            let entry = entry.map_err(|e| {
                self.err(
                    ConnectorErrorKind::BadData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            let at_dn = Dn::parse(&entry.dn).is_ok_and(|d| d.norm() == which.dn.norm());
            if !at_dn && which.anchor.is_none() {
                continue;
            }
            let obj = self
                .convert(entry)
                .map_err(|m| self.err(ConnectorErrorKind::BadData, m))?;
            if at_dn || which.anchor.as_ref() == Some(&obj.anchor) {
                sink.push(ImportChange::Upsert(obj))
                    .map_err(|m| self.err(ConnectorErrorKind::Unsupported, m))?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn export(&mut self, items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        if self.cfg.mode == LdifMode::Source {
            return Err(self.err(
                ConnectorErrorKind::Unsupported,
                "an ldif source is read-only; make it mode = \"target\" to export to it".into(),
            ));
        }
        Ok(items
            .iter()
            .map(|item| match item.kind {
                ExportKind::Add => {
                    let given =
                        item.changes
                            .iter()
                            .find(|c| c.attr == self.cfg.anchor)
                            .and_then(|c| match &c.op {
                                crate::model::ChangeOp::Replace(v)
                                | crate::model::ChangeOp::Add(v) => v.first().map(|v| match v {
                                    Value::Binary(b) => b.clone(),
                                    other => other.to_text().into_bytes(),
                                }),
                                crate::model::ChangeOp::Remove(_) => None,
                            });
                    let anchor = given.unwrap_or_else(|| {
                        let key = format!("{}/{}", self.name, item.dn.norm());
                        uuid::Uuid::new_v5(&ANCHOR_NAMESPACE, key.as_bytes())
                            .to_string()
                            .into_bytes()
                    });
                    let mut server_attrs = Attributes::new();
                    if !item.changes.iter().any(|c| c.attr.is("objectClass")) {
                        server_attrs.add(
                            &AttrName::new("objectClass"),
                            Value::String(item.object_class.clone()),
                        );
                    }
                    server_attrs.add(&self.cfg.anchor, anchor_value(&anchor));
                    ExportOutcome::Applied {
                        anchor: Some(Anchor::new(anchor)),
                        server_attrs,
                    }
                }
                ExportKind::Update | ExportKind::Delete => ExportOutcome::Applied {
                    anchor: None,
                    server_attrs: Attributes::new(),
                },
            })
            .collect())
    }

    fn finish_export(
        &mut self,
        space: &dyn SpaceView,
    ) -> Result<Option<Watermark>, ConnectorError> {
        if self.cfg.mode == LdifMode::Source {
            return Ok(None);
        }
        self.write_file(space)
            .map(|d| Some(Watermark(d)))
            .map_err(|m| self.err(ConnectorErrorKind::Unreachable, m))
    }
}

#[cfg(test)]
#[path = "slapd_roundtrip_tests.rs"]
mod slapd_roundtrip_tests;
