//! modifyTimestamp polling for LDAP servers without syncprov: changed entries whole, and a
//! sweep of the anchors still present so that deletes are found too.

use super::{
    Ctx, Position, container_filter, push_entry, read_all, read_under, reread_subtrees, sink_err,
};
use crate::connector::ldap::session::{Failure, Session};
use crate::model::{Dn, ImportChange, UtcTime};

/// "Now" minus a margin for clock skew, in GeneralizedTime.
pub(super) fn timestamp_position() -> Position {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        - 300;
    Position::Timestamp {
        since: format!("{}Z", UtcTime::from_unix(secs).generalized_digits()),
    }
}

pub(super) async fn timestamp_delta(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    since: String,
) -> Result<(bool, Position), Failure> {
    let position = timestamp_position();
    let filter = format!("(&{}(modifyTimestamp>={since}))", ctx.scope.full_filter());
    let attrs = ctx.attrs.clone();
    read_all(session, ctx, &filter, &attrs, |ctx, e| {
        push_entry(ctx, e).map(|_| ())
    })
    .await?;
    // A renamed container has a new timestamp, its children do not.
    let filter = format!("(&{}(modifyTimestamp>={since}))", container_filter());
    let base = ctx.cfg.base_dn.clone();
    let mut containers = Vec::new();
    read_under(
        session,
        ctx,
        &base,
        &filter,
        &["1.1".into()],
        &mut |_, e| {
            containers.extend(Dn::parse(&e.dn).ok());
            Ok(())
        },
    )
    .await?;
    reread_subtrees(session, ctx, containers).await?;
    // Deletes leave no timestamp: a sweep of the anchors of everything still there makes
    // this a complete snapshot, and the runner removes what it did not name.
    let filter = ctx.scope.full_filter();
    let sweep = vec![
        ctx.mapper.anchor_attr().to_string(),
        "objectClass".into(),
        "structuralObjectClass".into(),
    ];
    read_all(session, ctx, &filter, &sweep, |ctx, e| {
        let Ok(dn) = Dn::parse(&e.dn) else {
            return Ok(());
        };
        if ctx.mapper.class(e).is_none() || !ctx.scope.contains(&dn) {
            return Ok(());
        }
        if let Ok(a) = ctx.mapper.anchor(e) {
            ctx.sink.push(ImportChange::Present(a)).map_err(sink_err)?;
        }
        Ok(())
    })
    .await?;
    Ok((true, position))
}
