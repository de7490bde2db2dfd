//! Changes crossing the connector seam: what imports deliver and what exports carry.

use serde::{Deserialize, Serialize};

use super::{Anchor, AttrName, Attributes, CsId, Dn, ValueSet};

/// An object as a connector read it from its directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportedObject {
    /// The directory's immutable id.
    pub anchor: Anchor,
    /// Its DN.
    pub dn: Dn,
    /// The structural object class.
    pub object_class: String,
    /// Its attributes; reference-syntax attributes carry [`super::RefTarget::Dn`] values, or
    /// [`super::RefTarget::Anchored`] ones where the directory holds them as links.
    pub attrs: Attributes,
}

/// Changed attributes of an object the connector space already holds (a DirSync delta
/// names only what changed, and linked attributes only the values added or removed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialObject {
    /// The directory's immutable id.
    pub anchor: Anchor,
    /// Its DN now (a different DN is a move).
    pub dn: Dn,
    /// Attribute changes to apply to the hologram, in order.
    pub changes: Vec<AttrChange>,
}

/// One change from an import.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ImportChange {
    /// The object exists with this state (an add, an update or a move: the anchor decides).
    Upsert(ImportedObject),
    /// Some attributes of a known object changed (see [`PartialObject`]).
    Merge(PartialObject),
    /// The object still exists unchanged (a complete snapshot names it so it is kept).
    Present(Anchor),
    /// The object with this anchor is gone from the connector space: deleted, or out of
    /// scope (it may still exist in the directory and be referenced there).
    Delete(Anchor),
    /// The object with this anchor was deleted in its directory (a tombstone): gone as with
    /// [`ImportChange::Delete`], and, as AD does for linked attributes, every link to it in
    /// other objects goes with it, whether or not the delta reports those objects.
    Tombstone(Anchor),
}

/// A connector's delta position: DirSync cookie, syncrepl cookie, file digest. Opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark(pub Vec<u8>);

/// What to do to one attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOp {
    /// Add these values.
    Add(ValueSet),
    /// Remove these values.
    Remove(ValueSet),
    /// Replace all values (an empty set clears the attribute).
    Replace(ValueSet),
}

/// One attribute's change in an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    /// The attribute.
    pub attr: AttrName,
    /// The operation.
    pub op: ChangeOp,
}

impl AttrChange {
    /// `add member: a; b (+3 more)`: the change for people, at most `max_values` values.
    pub fn summary(&self, max_values: usize) -> String {
        let (op, values) = match &self.op {
            ChangeOp::Add(v) => ("add", v),
            ChangeOp::Remove(v) => ("remove", v),
            ChangeOp::Replace(v) => ("replace", v),
        };
        let shown: Vec<String> = values
            .iter()
            .take(max_values)
            .map(|v| v.to_text())
            .collect();
        let more = if values.len() > max_values {
            format!(" (+{} more)", values.len() - max_values)
        } else {
            String::new()
        };
        format!("{op} {}: {}{more}", self.attr, shown.join("; "))
    }
}

/// The kind of a pending export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportKind {
    /// Create the object.
    Add,
    /// Change attributes and/or rename.
    Update,
    /// Delete the object.
    Delete,
}

/// A pending export as handed to a connector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportItem {
    /// The CS object it belongs to.
    pub cs_id: CsId,
    /// Add, update or delete.
    pub kind: ExportKind,
    /// The anchor, once the directory has assigned one.
    pub anchor: Option<Anchor>,
    /// The DN the directory knows the object by now (for an add: the DN to create).
    pub dn: Dn,
    /// A new DN when the object must be renamed or moved.
    pub new_dn: Option<Dn>,
    /// The structural object class.
    pub object_class: String,
    /// Attribute changes; for an add, every attribute as a Replace.
    pub changes: Vec<AttrChange>,
    /// Where the item stands in the export's order: items of one stage may go to the
    /// directory at once, a later stage only after the earlier ones are done (what frees a
    /// DN or a unique value goes before what takes it).
    pub stage: u16,
}

/// What a connector did with one export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExportOutcome {
    /// The directory took it; an add reports the anchor the directory assigned.
    Applied {
        /// The new object's anchor (adds only).
        anchor: Option<Anchor>,
        /// Attributes the directory set by itself (generated ids, object classes), so the
        /// hologram matches what a later import will read.
        server_attrs: Attributes,
    },
    /// Not tried: the directory became unreachable before this item. It stays pending,
    /// with no error recorded on the object, and the export stops with this reason.
    NotTried {
        /// Why the connector stopped.
        reason: String,
    },
    /// The directory refused it, in its own words.
    Failed {
        /// The directory's message.
        message: String,
        /// Whether trying again later may succeed (busy, unavailable) or not (constraint).
        retryable: bool,
    },
}

impl ExportItem {
    /// The attributes of an add, built from its Replace changes.
    pub fn add_attributes(&self) -> Attributes {
        self.changes
            .iter()
            .filter_map(|c| match &c.op {
                ChangeOp::Replace(v) | ChangeOp::Add(v) => Some((c.attr.clone(), v.clone())),
                ChangeOp::Remove(_) => None,
            })
            .collect()
    }
}
