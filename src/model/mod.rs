//! The directory vocabulary shared by every layer: attribute names and values, DNs, anchors,
//! ids, connector-space and metaverse objects, and the changes that flow between them.
//!
//! Owns no IO and no clock reads; everything here is plain data with the case rules of LDAP
//! built in, so that code above never compares directory names as raw strings.

mod attr;
mod change;
mod clock;
pub mod dn;
mod ids;
mod object;
mod same;

pub use attr::{AttrName, Attributes, RefTarget, Value, ValueSet};
pub use change::{
    AttrChange, ChangeOp, ExportItem, ExportKind, ExportOutcome, ImportChange, ImportedObject,
    PartialObject, Watermark,
};
pub use clock::{Clock, FixedClock, SystemClock, UtcTime, civil_from_days};
pub use dn::{Dn, DnError};
pub use ids::{Anchor, ConnectorName, CsId, MvId, NameError, ObjectType, guid_string};
pub use object::{Contribution, CsObject};
pub use same::parse_time;
