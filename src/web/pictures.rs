//! The status page's pictures, drawn on the server as inline SVG: no script, no inline
//! style (colours come from classes in style.css, which the CSP allows), and a viewBox that
//! scales to a phone's width. Every name that reaches the SVG is escaped here, since the
//! templates insert the finished markup as it is.

use std::fmt::Write as _;

use crate::config::Config;
use crate::store::{ReadTx, RunRecord, StoreError};

/// Cycles shown in the run history picture (newest last).
pub const HISTORY_CYCLES: usize = 60;
/// How far back the run history and the objects-over-time pictures look.
pub const HISTORY_DAYS: i64 = 7;
/// Runs read for the objects-over-time pictures (a week of a 5-minute schedule).
pub const OBJECT_RUNS: usize = 2016;
/// Points drawn per objects-over-time line at most; more are thinned evenly.
const MAX_POINTS: usize = 300;

/// Text for SVG character data and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut (the full name is in the title).
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One connector as the topology draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// ldif, ldap, scim, …
    pub kind: String,
    /// Objects in its connector space.
    pub objects: u64,
    /// Pending exports.
    pub pending: u64,
    /// Objects that failed in the last cycle.
    pub errors: u64,
    /// Deletes held back.
    pub blocked_deletes: u64,
    /// Run through agents: the group and how many of its agents are connected.
    pub agents: Option<(String, usize)>,
}

/// The topology's numbers, cheap enough for every overview (no scan of the objects):
/// objects as the last cycle counted them (the anchor index where no cycle did yet),
/// pending exports and held deletes as they stand, and the last cycle's object errors.
pub fn nodes(
    tx: &ReadTx,
    config: &Config,
    runs: &[(u64, RunRecord)],
    agents: &[crate::agent::registry::AgentView],
) -> Result<Vec<Node>, StoreError> {
    let last = runs
        .iter()
        .map(|(_, r)| r)
        .find(|r| r.mode == "full" || r.mode == "delta");
    let mut out = Vec::with_capacity(config.connectors.len());
    for c in &config.connectors {
        let name = c.name.as_str();
        let objects = match last.and_then(|r| r.objects_at_end(name)) {
            Some(n) => n,
            None => tx.cs_count(&c.name)?,
        };
        out.push(Node {
            name: name.to_string(),
            kind: super::views::connector_kind(c),
            objects,
            pending: tx.pending_count(&c.name)?,
            errors: last
                .and_then(|r| r.connectors.iter().find(|s| s.connector == name))
                .map_or(0, |s| s.errors),
            blocked_deletes: tx.blocked_deletes(&c.name)?.len() as u64,
            agents: c.agent_group.as_ref().map(|g| {
                let up = agents
                    .iter()
                    .filter(|a| &a.group == g && a.state == "connected")
                    .count();
                (g.clone(), up)
            }),
        });
    }
    Ok(out)
}

/// The overview's two pictures: the topology and the run history.
pub fn overview(
    tx: &ReadTx,
    config: &Config,
    mv_objects: u64,
    watches: &[(String, String)],
    agents: &[crate::agent::registry::AgentView],
    now_ms: i64,
) -> Result<(String, String), StoreError> {
    let runs = tx.runs(super::views::HISTORY_RUNS)?;
    let nodes = nodes(tx, config, &runs, agents)?;
    Ok((
        topology(config, &nodes, mv_objects, watches),
        history(&runs, now_ms),
    ))
}

/// The connectors page's objects-over-time pictures, one per connector in `list`'s order.
pub fn per_connector(
    tx: &ReadTx,
    list: &[super::views::ConnectorView],
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let runs = tx.runs(OBJECT_RUNS)?;
    Ok(list
        .iter()
        .map(|c| objects_over_time(&c.name, &runs, now_ms))
        .collect())
}

/// The health class of a connector: errors are bad, held deletes, pending exports, a lost
/// watch or no connected agent (for a connector run through agents) are a warning.
fn health(c: &Node, watch_lost: bool) -> &'static str {
    let no_agent = c.agents.as_ref().is_some_and(|(_, up)| *up == 0);
    if c.errors > 0 {
        "bad"
    } else if c.blocked_deletes > 0 || watch_lost || c.pending > 0 || no_agent {
        "warn"
    } else {
        "ok"
    }
}

/// Sources → metaverse → targets. A connector with inbound rules is a source, one with
/// outbound rules a target (a writeback connector is both and drawn on both sides). Each
/// arrow carries the connector space's objects, its pending exports and its errors.
pub fn topology(
    config: &Config,
    list: &[Node],
    mv_objects: u64,
    watches: &[(String, String)],
) -> String {
    let is_source = |name: &str| {
        config
            .rules
            .inbound
            .iter()
            .any(|r| r.connector.as_str() == name)
    };
    let is_target = |name: &str| {
        config
            .rules
            .outbound
            .iter()
            .any(|r| r.connector.as_str() == name)
    };
    let lost = |name: &str| {
        watches
            .iter()
            .any(|(n, s)| n == name && s.starts_with("lost"))
    };
    let sources: Vec<&Node> = list.iter().filter(|c| is_source(&c.name)).collect();
    let targets: Vec<&Node> = list
        .iter()
        .filter(|c| is_target(&c.name) || !is_source(&c.name))
        .collect();
    const ROW: i64 = 92;
    const BOX_W: i64 = 180;
    const BOX_H: i64 = 56;
    const W: i64 = 900;
    let rows = sources.len().max(targets.len()).max(1) as i64;
    let h = rows * ROW + 24;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="picture topology" viewBox="0 0 {W} {h}" role="img" aria-labelledby="topology-title" xmlns="http://www.w3.org/2000/svg"><title id="topology-title">Topology: sources, metaverse, targets</title>"#
    );
    s.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>"#);
    let mv_x = (W - BOX_W) / 2;
    let mv_y = (h - BOX_H) / 2;
    let _ = write!(
        s,
        r#"<g class="node mv"><rect x="{mv_x}" y="{mv_y}" width="{BOX_W}" height="{BOX_H}" rx="8"/><text x="{}" y="{}" class="name">metaverse</text><text x="{}" y="{}" class="sub">{} objects</text></g>"#,
        mv_x + BOX_W / 2,
        mv_y + 24,
        mv_x + BOX_W / 2,
        mv_y + 44,
        thousands(mv_objects)
    );
    let top = |i: usize, n: usize| -> i64 {
        let used = n.max(1) as i64 * ROW;
        (h - used) / 2 + i as i64 * ROW + (ROW - BOX_H) / 2
    };
    for (side, group) in [("source", &sources), ("target", &targets)] {
        for (i, c) in group.iter().enumerate() {
            let x = if side == "source" { 10 } else { W - 10 - BOX_W };
            let y = top(i, group.len());
            let class = health(c, lost(&c.name));
            let name = esc(&c.name);
            // A connector run through agents says which group and how many are connected.
            let via = match &c.agents {
                Some((g, up)) => format!(" · agents {} ({up} up)", short(g, 12)),
                None => String::new(),
            };
            let _ = write!(
                s,
                r#"<g class="node {side} health-{class}"><title>{name} ({kind}): {objects} objects, {pending} pending exports, {errors} object errors in the last cycle, {held} deletes held</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8"/><text x="{tx}" y="{ty}" class="name">{short}</text><text x="{tx}" y="{sy}" class="sub">{kind}{via}{lost}</text></g>"#,
                via = esc(&via),
                kind = esc(&c.kind),
                objects = c.objects,
                pending = c.pending,
                errors = c.errors,
                held = c.blocked_deletes,
                tx = x + BOX_W / 2,
                ty = y + 24,
                sy = y + 44,
                short = esc(&short(&c.name, 20)),
                lost = if lost(&c.name) { " · watch lost" } else { "" },
            );
            // The arrow runs from the source to the metaverse, or from it to the target.
            let (x1, x2) = if side == "source" {
                (x + BOX_W, mv_x)
            } else {
                (mv_x + BOX_W, x)
            };
            let (y1, y2) = if side == "source" {
                (y + BOX_H / 2, mv_y + BOX_H / 2)
            } else {
                (mv_y + BOX_H / 2, y + BOX_H / 2)
            };
            // Above the arrow the objects, below it what is waiting or wrong.
            let above = format!("{} objects", thousands(c.objects));
            let mut below = Vec::new();
            if side == "target" || c.pending > 0 {
                below.push(format!("{} pending", thousands(c.pending)));
            }
            if c.errors > 0 {
                below.push(format!("{} errors", thousands(c.errors)));
            }
            if c.blocked_deletes > 0 {
                below.push(format!("{} held", thousands(c.blocked_deletes)));
            }
            let (lx, ly) = ((x1 + x2) / 2, (y1 + y2) / 2);
            let _ = write!(
                s,
                r#"<g class="edge health-{class}"><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" marker-end="url(#arrow)"/><text x="{lx}" y="{}" class="label">{}</text><text x="{lx}" y="{}" class="label">{}</text></g>"#,
                ly - 8,
                esc(&above),
                ly + 20,
                esc(&below.join(" · ")),
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The phases drawn as stacked bars, with their classes.
const PHASES: [&str; 4] = ["import", "sync", "export", "confirm"];

/// The cycles of the last days, oldest first: each a stack of phase durations, with the
/// changes (imported plus exported) as a line on its own scale; a failed cycle or one with
/// object errors gets a red mark, held deletes an amber one.
pub fn history(runs: &[(u64, RunRecord)], now_ms: i64) -> String {
    let since = now_ms - HISTORY_DAYS * 86_400_000;
    let mut cycles: Vec<&(u64, RunRecord)> = runs
        .iter()
        .filter(|(_, r)| r.started_ms >= since && (r.mode == "full" || r.mode == "delta"))
        .take(HISTORY_CYCLES)
        .collect();
    // runs come newest first.
    cycles.reverse();
    const W: f64 = 760.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 56.0;
    const TOP: f64 = 34.0;
    const BOTTOM: f64 = 30.0;
    let plot_h = H - TOP - BOTTOM;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="picture history" viewBox="0 0 {W} {H}" role="img" aria-labelledby="history-title" xmlns="http://www.w3.org/2000/svg"><title id="history-title">Run history: duration per phase and changes per cycle, last {HISTORY_DAYS} days</title>"#
    );
    // The legend.
    let mut lx = LEFT;
    for p in PHASES {
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="8" width="12" height="12" class="phase-{p}"/><text x="{}" y="19" class="legend">{p}</text>"#,
            lx + 16.0
        );
        lx += 86.0;
    }
    let _ = write!(
        s,
        r#"<line x1="{lx}" y1="14" x2="{}" y2="14" class="changes"/><text x="{}" y="19" class="legend">changes</text><circle cx="{}" cy="14" r="5" class="mark-error"/><text x="{}" y="19" class="legend">errors</text><path d="M{} 20 l6 -12 l6 12 z" class="mark-held"/><text x="{}" y="19" class="legend">held deletes</text>"#,
        lx + 18.0,
        lx + 22.0,
        lx + 100.0,
        lx + 110.0,
        lx + 160.0,
        lx + 176.0,
    );
    if cycles.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="empty">no cycle in the last {HISTORY_DAYS} days</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return s;
    }
    let phase_ms = |r: &RunRecord, p: &str| -> u64 {
        r.phases.iter().filter(|x| x.phase == p).map(|x| x.ms).sum()
    };
    let changes = |r: &RunRecord| -> u64 {
        r.connectors
            .iter()
            .map(|c| c.import.total() + c.export.total())
            .sum()
    };
    let max_ms = cycles
        .iter()
        .map(|(_, r)| PHASES.iter().map(|p| phase_ms(r, p)).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let max_changes = cycles
        .iter()
        .map(|(_, r)| changes(r))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (W - LEFT - RIGHT) / cycles.len() as f64;
    let bar_w = (slot * 0.7).clamp(1.0, 36.0);
    let base = TOP + plot_h;
    // Axes with their top values.
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" class="axis"/><text x="{}" y="{}" class="tick end">{}</text><text x="{}" y="{}" class="tick end">0</text><text x="{}" y="{}" class="tick end">{}</text>"#,
        W - RIGHT,
        LEFT - 4.0,
        TOP + 4.0,
        esc(&duration(max_ms)),
        LEFT - 4.0,
        base,
        W - 4.0,
        TOP + 4.0,
        thousands(max_changes),
    );
    let mut line = String::new();
    for (i, (id, r)) in cycles.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let mut y = base;
        let errors: u64 = r.connectors.iter().map(|c| c.errors).sum();
        let held: u64 = r.connectors.iter().map(|c| c.blocked_deletes).sum();
        let total_ms: u64 = PHASES.iter().map(|p| phase_ms(r, p)).sum();
        let _ = write!(
            s,
            r#"<a href="/runs/{id}"><g class="run"><title>#{id} {mode}, {when}: {dur}, {chg} changes, {errors} errors, {held} deletes held{failed}</title>"#,
            mode = esc(&r.mode),
            when = crate::model::UtcTime::from_unix(r.started_ms.div_euclid(1000)).readable(),
            dur = esc(&duration(total_ms)),
            chg = changes(r),
            failed = r
                .failure
                .as_deref()
                .map(|f| format!("; failed: {}", esc(&short(f, 160))))
                .unwrap_or_default(),
        );
        for p in PHASES {
            let hgt = phase_ms(r, p) as f64 / max_ms as f64 * plot_h;
            if hgt <= 0.0 {
                continue;
            }
            y -= hgt;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{hgt:.1}" class="phase-{p}"/>"#
            );
        }
        // A transparent hit area over the whole column, so that short bars can be tapped.
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{TOP}" width="{slot:.1}" height="{plot_h}" class="hit"/>"#,
            LEFT + i as f64 * slot
        );
        let cx = x + bar_w / 2.0;
        if errors > 0 || r.failure.is_some() {
            let _ = write!(
                s,
                r#"<circle cx="{cx:.1}" cy="{:.1}" r="5" class="mark-error"/>"#,
                (y - 8.0).max(TOP - 4.0)
            );
        }
        if held > 0 {
            let _ = write!(
                s,
                r#"<path d="M{:.1} {:.1} l6 -12 l6 12 z" class="mark-held"/>"#,
                cx - 6.0,
                (y - 16.0).max(TOP + 8.0)
            );
        }
        s.push_str("</g></a>");
        let cy = base - changes(r) as f64 / max_changes as f64 * plot_h;
        let _ = write!(line, "{}{cx:.1},{cy:.1}", if i == 0 { "" } else { " " });
    }
    let _ = write!(s, r#"<polyline points="{line}" class="changes"/>"#);
    if let (Some((_, first)), Some((_, last))) = (cycles.first(), cycles.last()) {
        let _ = write!(
            s,
            r#"<text x="{LEFT}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick end">{}</text>"#,
            H - 8.0,
            crate::model::UtcTime::from_unix(first.started_ms.div_euclid(1000)).readable(),
            W - RIGHT,
            H - 8.0,
            crate::model::UtcTime::from_unix(last.started_ms.div_euclid(1000)).readable(),
        );
    }
    s.push_str("</svg>");
    s
}

/// One connector's connector-space size at the end of each cycle that recorded it, over the
/// last days, as a small line chart.
pub fn objects_over_time(connector: &str, runs: &[(u64, RunRecord)], now_ms: i64) -> String {
    let since = now_ms - HISTORY_DAYS * 86_400_000;
    let mut points: Vec<(i64, u64)> = runs
        .iter()
        .filter(|(_, r)| r.started_ms >= since)
        .filter_map(|(_, r)| Some((r.finished_ms, r.objects_at_end(connector)?)))
        .collect();
    points.sort_unstable();
    if points.len() > MAX_POINTS {
        let step = points.len().div_ceil(MAX_POINTS);
        let last = points.last().copied();
        points = points.into_iter().step_by(step).collect();
        // The newest value is the one the admin looks for: always drawn.
        if let Some(l) = last {
            if points.last() != Some(&l) {
                points.push(l);
            }
        }
    }
    const W: f64 = 360.0;
    const H: f64 = 110.0;
    const PAD: f64 = 10.0;
    const LEFT: f64 = 64.0;
    let mut s = String::new();
    let name = esc(connector);
    let _ = write!(
        s,
        r#"<svg class="picture objects" viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg"><title>{name}: objects in the connector space, last {HISTORY_DAYS} days</title>"#
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="empty">no cycle recorded yet</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return s;
    };
    let lo = points.iter().map(|p| p.1).min().unwrap_or(0);
    let hi = points.iter().map(|p| p.1).max().unwrap_or(0);
    let span_t = (last.0 - first.0).max(1) as f64;
    let span_v = (hi - lo).max(1) as f64;
    let plot_w = W - LEFT - PAD;
    let plot_h = H - 2.0 * PAD - 18.0;
    let xy = |(t, v): (i64, u64)| -> (f64, f64) {
        let x = if points.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + (t - first.0) as f64 / span_t * plot_w
        };
        let y = PAD + plot_h - (v - lo) as f64 / span_v * plot_h;
        (x, y)
    };
    let pts: Vec<String> = points
        .iter()
        .map(|p| {
            let (x, y) = xy(*p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="tick end">{}</text><text x="{}" y="{}" class="tick end">{}</text><polyline points="{}" class="series"/>"#,
        LEFT - 6.0,
        PAD + 8.0,
        thousands(hi),
        LEFT - 6.0,
        PAD + plot_h,
        thousands(lo),
        pts.join(" ")
    );
    let (x, y) = xy(*last);
    let _ = write!(
        s,
        r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" class="series-end"><title>{} objects at {}</title></circle><text x="{LEFT}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick end">now: {}</text></svg>"#,
        thousands(last.1),
        crate::model::UtcTime::from_unix(last.0.div_euclid(1000)).readable(),
        H - 6.0,
        crate::model::UtcTime::from_unix(first.0.div_euclid(1000)).readable(),
        W - PAD,
        H - 6.0,
        thousands(last.1),
    );
    s
}

/// "850 ms", "12.5 s", "3 min".
fn duration(ms: u64) -> String {
    match ms {
        ..1000 => format!("{ms} ms"),
        1000..120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min", ms / 60_000),
    }
}

#[cfg(test)]
#[path = "pictures_tests.rs"]
mod tests;
