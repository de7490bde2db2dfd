//! The record format, pinned: one value of every stored record type, with every enum variant
//! the records can hold, encoded by this build and compared byte for byte with
//! `tests/data/record-format/v{FORMAT_VERSION}.txt`, and the committed bytes of every
//! earlier format decoded by this build.
//!
//! postcard is not self-describing: it numbers enum variants by position and writes fields
//! in declaration order, so reordering a variant, inserting a field or changing a type
//! silently changes what a state file means. This test is what notices. A deliberate
//! change bumps `FORMAT_VERSION`, adds a migration, and adds the new version's file with
//! `BRIDGEHEAD_BLESS_FORMAT=1 cargo test --lib golden` (which writes the file and fails, so
//! that blessing can never pass a run by itself); the old versions' files stay.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::admin::{AdminPasswordRecord, StagingOverrideRecord};
use super::records::{
    ChangeCounts, ConnectorRunStats, CsRecord, ErrorRecord, FORMAT_VERSION, MvRecord,
    OLDEST_FORMAT, PendingExportRecord, PhaseTime, RunRecord, decode, encode,
};
use crate::model::{
    Anchor, AttrChange, AttrName, Attributes, ChangeOp, ConnectorName, Contribution, Dn,
    ExportKind, MvId, ObjectType, RefTarget, Value, ValueSet,
};

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn set(values: Vec<Value>) -> ValueSet {
    let mut s = ValueSet::new();
    for v in values {
        s.insert(v);
    }
    s
}

/// Attributes holding every value kind and every reference kind.
fn every_value() -> Attributes {
    let mut a = Attributes::new();
    a.set(AttrName::new("cn"), set(vec![Value::str("Ada Lovelace")]));
    a.set(
        AttrName::new("objectGUID"),
        set(vec![Value::Binary(vec![0, 1, 0xfe, 0xff])]),
    );
    a.set(
        AttrName::new("userAccountControl"),
        set(vec![Value::Integer(512), Value::Integer(-3)]),
    );
    a.set(AttrName::new("enabled"), set(vec![Value::Boolean(true)]));
    a.set(
        AttrName::new("whenCreated"),
        set(vec![Value::DateTime(1_700_000_000)]),
    );
    a.set(
        AttrName::new("member"),
        set(vec![
            Value::Reference(RefTarget::Dn(dn("CN=A\\, B,OU=Staff,DC=corp,DC=test"))),
            Value::Reference(RefTarget::Mv(MvId(42))),
            Value::Reference(RefTarget::Anchored {
                anchor: Anchor::new(vec![9, 8, 7]),
                dn: dn("CN=C,OU=Staff,DC=corp,DC=test"),
            }),
        ]),
    );
    a
}

fn error() -> ErrorRecord {
    ErrorRecord {
        message: "constraintViolation (19): mail exists".into(),
        first_seen_ms: 1_700_000_000_000,
        last_seen_ms: 1_700_000_360_000,
        attempts: 3,
    }
}

fn export(kind: ExportKind) -> PendingExportRecord {
    PendingExportRecord {
        kind,
        new_dn: Some(dn("uid=ada,ou=people,dc=out")),
        changes: vec![
            AttrChange {
                attr: AttrName::new("mail"),
                op: ChangeOp::Add(set(vec![Value::str("ada@example.test")])),
            },
            AttrChange {
                attr: AttrName::new("member"),
                op: ChangeOp::Remove(set(vec![Value::Reference(RefTarget::Mv(MvId(7)))])),
            },
            AttrChange {
                attr: AttrName::new("title"),
                op: ChangeOp::Replace(ValueSet::new()),
            },
        ],
        rule: "out-people".into(),
    }
}

fn cs(kind: ExportKind, object_type: ObjectType) -> CsRecord {
    CsRecord {
        connector: "corp".into(),
        anchor: Some(vec![1, 2, 3, 4]),
        dn: dn("CN=Ada,OU=Staff,DC=corp,DC=test"),
        object_class: "user".into(),
        attrs: every_value(),
        deleted: true,
        object_type: Some(object_type),
        export: Some(export(kind)),
        error: Some(error()),
        unresolved: vec![("manager".into(), "CN=Nobody,DC=corp,DC=test".into())],
        unconfirmed: true,
        claims: vec![("mail".into(), "ada@example.test".into())],
    }
}

fn mv(object_type: ObjectType) -> MvRecord {
    MvRecord {
        object_type,
        attrs: every_value(),
        sources: vec![Contribution {
            connector: ConnectorName::new("corp").unwrap_or_else(|e| panic!("{e}")),
            rule: "users".into(),
            precedence: 10,
        }],
        attr_sources: vec![0, 0, 0, 0, 0, 0],
        deleted: false,
        error: Some(error()),
    }
}

fn run() -> RunRecord {
    let counts = ChangeCounts {
        adds: 1,
        updates: 2,
        deletes: 3,
        renames: 4,
    };
    RunRecord {
        started_ms: 1_700_000_000_000,
        finished_ms: 1_700_000_004_321,
        mode: "delta".into(),
        trigger: "scheduler".into(),
        connectors: vec![ConnectorRunStats {
            connector: "corp".into(),
            import: counts,
            export: counts,
            errors: 5,
            pending: 6,
            blocked_deletes: 7,
        }],
        failure: Some("corp: unreachable".into()),
        phases: vec![PhaseTime {
            phase: "import".into(),
            connector: Some("corp".into()),
            objects: 10,
            ms: 20,
        }],
        staging: true,
    }
}

/// Every stored shape, by name, encoded by this build.
fn samples() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut put = |name: String, bytes: Vec<u8>| {
        out.insert(name, bytes);
    };
    for (kind, ty) in [
        (ExportKind::Add, ObjectType::Person),
        (ExportKind::Update, ObjectType::Group),
        (ExportKind::Delete, ObjectType::Contact),
    ] {
        put(format!("cs_{kind:?}_{ty:?}"), encode(&cs(kind, ty)));
    }
    for ty in [
        ObjectType::Person,
        ObjectType::Group,
        ObjectType::Contact,
        ObjectType::Device,
    ] {
        put(format!("mv_{ty:?}"), encode(&mv(ty)));
    }
    put("run".into(), encode(&run()));
    put("not_kept".into(), encode(&every_value()));
    put(
        "join_attrs".into(),
        encode(&vec!["mail".to_string(), "employeeid".to_string()]),
    );
    put(
        "admin_password".into(),
        encode(&AdminPasswordRecord {
            phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            set_ms: 1_700_000_000_000,
            set_by: "first start".into(),
        }),
    );
    put(
        "staging_override".into(),
        encode(&StagingOverrideRecord {
            left_ms: 1_700_000_000_000,
            left_by: "admin".into(),
        }),
    );
    out
}

fn pinned(version: u8) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/record-format")
        .join(format!("v{version}.txt"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// The committed samples of one format version: name → bytes.
fn read_pinned(version: u8) -> BTreeMap<String, Vec<u8>> {
    let path = pinned(version);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; a new format version needs its file (BRIDGEHEAD_BLESS_FORMAT=1)",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, bytes) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{}: bad line {l:?}", path.display()));
            (name.to_string(), unhex(bytes.trim()))
        })
        .collect()
}

#[test]
fn golden_this_build_writes_exactly_the_pinned_bytes() {
    let ours = samples();
    if std::env::var_os("BRIDGEHEAD_BLESS_FORMAT").is_some() {
        let mut text = format!(
            "# Record format {FORMAT_VERSION}: one sample of every stored shape (src/store/golden_tests.rs).\n\
             # Never edit by hand; a new format version gets a new file.\n"
        );
        for (name, bytes) in &ours {
            text.push_str(&format!("{name} {}\n", hex(bytes)));
        }
        let path = pinned(FORMAT_VERSION);
        std::fs::create_dir_all(path.parent().unwrap_or(&path)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        panic!(
            "wrote {}; check it in and run again without BRIDGEHEAD_BLESS_FORMAT",
            path.display()
        );
    }
    let pinned = read_pinned(FORMAT_VERSION);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        pinned.keys().collect::<Vec<_>>(),
        "the stored shapes changed"
    );
    for (name, bytes) in &ours {
        assert_eq!(
            hex(bytes),
            hex(&pinned[name]),
            "{name}: this build encodes it differently from record format {FORMAT_VERSION}; \
             a format change needs a version bump and a migration"
        );
    }
}

fn decodes<T: DeserializeOwned + Serialize>(name: &str, bytes: &[u8], version: u8) {
    let value: T = decode(bytes).unwrap_or_else(|e| panic!("v{version} {name}: {e}"));
    // Decoded into this build's shape, it encodes to the same content (the version byte
    // aside): nothing was dropped or misread.
    assert_eq!(
        hex(&encode(&value)[1..]),
        hex(&bytes[1..]),
        "v{version} {name} does not survive a round trip"
    );
}

#[test]
fn golden_every_earlier_format_still_decodes() {
    let mut seen = 0;
    for version in OLDEST_FORMAT..=FORMAT_VERSION {
        let path = pinned(version);
        if version < 2 && !path.exists() {
            // Format 1 predates the pinned files; format 2 is a superset of it (see
            // records.rs), and its file covers every variant format 1 could hold.
            continue;
        }
        for (name, bytes) in read_pinned(version) {
            assert_eq!(bytes.first(), Some(&version), "{name}: version byte");
            match name.split('_').next().unwrap_or_default() {
                "cs" => decodes::<CsRecord>(&name, &bytes, version),
                "mv" => decodes::<MvRecord>(&name, &bytes, version),
                "run" => decodes::<RunRecord>(&name, &bytes, version),
                "not" => decodes::<Attributes>(&name, &bytes, version),
                "join" => decodes::<Vec<String>>(&name, &bytes, version),
                "admin" => decodes::<AdminPasswordRecord>(&name, &bytes, version),
                "staging" => decodes::<StagingOverrideRecord>(&name, &bytes, version),
                other => panic!("v{version}: unknown sample kind {other:?} ({name})"),
            }
            seen += 1;
        }
    }
    assert!(seen >= 12, "only {seen} samples read");
}

#[test]
fn golden_the_samples_decode_to_what_was_encoded() {
    // The samples themselves are meaningful: every variant comes back as itself.
    let c = cs(ExportKind::Update, ObjectType::Group);
    assert_eq!(decode::<CsRecord>(&encode(&c)).ok(), Some(c));
    let m = mv(ObjectType::Device);
    assert_eq!(decode::<MvRecord>(&encode(&m)).ok(), Some(m));
    assert_eq!(decode::<RunRecord>(&encode(&run())).ok(), Some(run()));
}
