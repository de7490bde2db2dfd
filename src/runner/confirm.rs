//! The confirming import's judgement: whether what a directory hands back for an object
//! just exported is what was sent (up to notation), something it did not keep, or a
//! change made there.

use crate::model::{AttrName, Attributes, Value, ValueSet};
use crate::store::CsRecord;

/// How an import judges objects it finds just after an export of them.
#[derive(Debug, Clone, Copy)]
pub struct Confirm<'a> {
    /// Now, for the error kept on an object whose export the directory did not keep.
    pub now_ms: i64,
    /// Attributes the directory never hands back (apply-once flows: passwords and the
    /// like); their absence is not a refusal.
    pub write_only: &'a [AttrName],
    /// The empty-import guard applies: the connector feeds the metaverse, so objects it no
    /// longer finds would be deleted everywhere. A connector that is only a target is not
    /// guarded: what its import misses (an export a crash cut short, say) is provisioned
    /// again, and nothing is deleted.
    pub guarded: bool,
}

/// [`Confirm`] with its running count.
pub(super) struct Judge<'a> {
    /// The rules.
    pub rules: Confirm<'a>,
    /// Exported objects found not kept so far.
    pub not_kept: u64,
}

/// What an import found, against the hologram.
pub(super) enum Seen {
    /// The same values, up to notation.
    Same,
    /// Just exported, and some of what was sent is not in the directory.
    NotKept {
        /// Names each attribute with what was sent and what the directory holds.
        message: String,
        /// The values sent that were not kept.
        sent: Attributes,
    },
    /// Changed in the directory.
    Changed,
}

/// Compares an import with the hologram. After an export the hologram holds what was
/// sent: each sent value must come back (values the directory adds on its own are not a
/// change anyone made); otherwise every value on either side counts.
pub(super) fn compare(rec: &CsRecord, got: &Attributes, judge: &Judge<'_>) -> Seen {
    if !rec.unconfirmed {
        return match rec.attrs.differences(got, true).is_empty() {
            true => Seen::Same,
            false => Seen::Changed,
        };
    }
    let empty = ValueSet::new();
    let (waiting, lost): (Vec<AttrName>, Vec<AttrName>) = rec
        .attrs
        .differences(got, false)
        .into_iter()
        .filter(|a| !judge.rules.write_only.contains(a))
        .partition(|a| {
            // A reference to an object not in the directory yet waits for it; the next
            // sync sends it again, and it is no refusal.
            let mine = rec.attrs.get(a.key()).unwrap_or(&empty);
            !mine.is_empty() && mine.iter().all(|v| v.as_dn_ref().is_some())
        });
    if lost.is_empty() {
        return match waiting.is_empty() {
            true => Seen::Same,
            false => Seen::Changed,
        };
    }
    let text = |v: &ValueSet| {
        let all: Vec<String> = v.iter().map(Value::to_text).collect();
        let mut s = format!("{all:?}");
        if s.len() > 200 {
            s = format!("{}…", s.chars().take(200).collect::<String>());
        }
        s
    };
    let mut sent = Attributes::new();
    let mut parts = Vec::new();
    for a in lost {
        let mine = rec.attrs.get(a.key()).unwrap_or(&empty);
        parts.push(format!(
            "{a} sent {}, the directory holds {}",
            text(mine),
            text(got.get(a.key()).unwrap_or(&empty))
        ));
        sent.set(a, mine.clone());
    }
    Seen::NotKept {
        message: format!(
            "the directory did not keep what was exported ({}); it is not sent again until \
             the value to send changes",
            parts.join("; ")
        ),
        sent,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{Dn, RefTarget};

    fn attrs(pairs: &[(&str, Value)]) -> Attributes {
        pairs
            .iter()
            .map(|(n, v)| (AttrName::new(n), ValueSet::one(v.clone())))
            .collect()
    }

    fn record(hologram: Attributes, unconfirmed: bool) -> CsRecord {
        CsRecord {
            connector: "cloud".into(),
            anchor: Some(b"id".to_vec()),
            dn: Dn::parse("externalId=x,ou=Users").unwrap(),
            object_class: "User".into(),
            attrs: hologram,
            deleted: false,
            object_type: None,
            export: None,
            error: None,
            unresolved: Vec::new(),
            unconfirmed,
            claims: Vec::new(),
        }
    }

    fn judge(write_only: &[AttrName]) -> Judge<'_> {
        Judge {
            rules: Confirm {
                now_ms: 0,
                write_only,
                guarded: true,
            },
            not_kept: 0,
        }
    }

    #[test]
    fn a_confirming_import_judges_what_came_back_against_what_was_sent() {
        let sent = attrs(&[
            ("active", Value::str("True")),
            ("password", Value::str("secret")),
            ("title", Value::str("Boss")),
        ]);
        let pw = [AttrName::new("password")];
        // The server's notation, a write-only value absent, an attribute it adds itself.
        let back = attrs(&[
            ("active", Value::Boolean(true)),
            ("title", Value::str("Boss")),
            ("meta.created", Value::str("now")),
        ]);
        assert!(matches!(
            compare(&record(sent.clone(), true), &back, &judge(&pw)),
            Seen::Same
        ));
        // Rewritten: reported with both values, and only the rewritten attribute held.
        let rewritten = attrs(&[
            ("active", Value::Boolean(false)),
            ("title", Value::str("Boss")),
        ]);
        match compare(&record(sent.clone(), true), &rewritten, &judge(&pw)) {
            Seen::NotKept { message, sent } => {
                assert!(message.contains("active sent [\"True\"]"), "{message}");
                assert!(message.contains("holds [\"FALSE\"]"), "{message}");
                assert_eq!(sent.len(), 1);
                assert!(sent.get("active").is_some());
            }
            _ => panic!("a rewrite went unnoticed"),
        }
        // A reference whose target is not there yet waits; it is no refusal.
        let manager = Value::Reference(RefTarget::Dn(Dn::parse("externalId=m,ou=Users").unwrap()));
        let with_ref = attrs(&[("title", Value::str("Boss")), ("manager", manager)]);
        let without = attrs(&[("title", Value::str("Boss"))]);
        assert!(matches!(
            compare(&record(with_ref, true), &without, &judge(&[])),
            Seen::Changed
        ));
        // Outside a confirmation a value the directory gained is a change.
        assert!(matches!(
            compare(&record(without.clone(), false), &back, &judge(&[])),
            Seen::Changed
        ));
        assert!(matches!(
            compare(&record(without.clone(), false), &without, &judge(&[])),
            Seen::Same
        ));
    }
}
