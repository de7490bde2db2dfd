//! Calendar arithmetic for the date functions: Unix seconds ↔ civil date and time (proleptic
//! Gregorian, UTC), parsing date text for `CDate`, .NET-style format strings for
//! `FormatDateTime`, AD file times, and `DateAdd` intervals. Pure integer code, no clock.

use crate::model::civil_from_days;

/// Seconds per day.
const DAY: i64 = 86_400;
/// Seconds from 1601-01-01 (the Windows FILETIME epoch) to 1970-01-01.
const FILETIME_EPOCH_OFFSET: i64 = 11_644_473_600;
/// FILETIME ticks (100 ns) per second.
const TICKS: i64 = 10_000_000;

/// The earliest instant a date function produces: 0001-01-01T00:00:00Z (as .NET's DateTime).
pub(super) const MIN_SECS: i64 = -62_135_596_800;
/// The latest instant a date function produces: 9999-12-31T23:59:59Z.
pub(super) const MAX_SECS: i64 = 253_402_300_799;

/// A broken-down UTC date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// (year, month, day) → days since 1970-01-01. Callers keep |year| within a few million.
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

/// Days in a month of a year.
pub(super) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Unix seconds → civil UTC date and time.
pub(super) fn to_civil(secs: i64) -> Civil {
    let (year, month, day) = civil_from_days(secs.div_euclid(DAY));
    let rem = secs.rem_euclid(DAY);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3_600) as u32,
        minute: (rem / 60 % 60) as u32,
        second: (rem % 60) as u32,
    }
}

/// Civil UTC date and time → Unix seconds, or None outside 0001..9999 or for an invalid date.
pub(super) fn from_civil(c: Civil) -> Option<i64> {
    if !(1..=9999).contains(&c.year)
        || !(1..=12).contains(&c.month)
        || c.day < 1
        || c.day > days_in_month(c.year, c.month)
        || c.hour > 23
        || c.minute > 59
        || c.second > 59
    {
        return None;
    }
    Some(
        days_from_civil(c.year, c.month, c.day) * DAY
            + i64::from(c.hour) * 3_600
            + i64::from(c.minute) * 60
            + i64::from(c.second),
    )
}

/// Whether `secs` lies within the range date functions produce.
pub(super) fn in_range(secs: i64) -> bool {
    (MIN_SECS..=MAX_SECS).contains(&secs)
}

/// The ISO 8601 text used when a date is turned into a string (`CStr`, `&`):
/// `2012-01-01T23:00:00Z`.
pub(super) fn iso(secs: i64) -> String {
    let c = to_civil(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// AD's integer date (FILETIME: 100 ns ticks since 1601-01-01 UTC) → Unix seconds.
pub(super) fn from_filetime(ticks: i64) -> i64 {
    ticks.div_euclid(TICKS) - FILETIME_EPOCH_OFFSET
}

/// Unix seconds → FILETIME ticks; None on overflow.
pub(super) fn to_filetime(secs: i64) -> Option<i64> {
    secs.checked_add(FILETIME_EPOCH_OFFSET)?.checked_mul(TICKS)
}

/// A small cursor over ASCII-ish date text.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            v = v * 10 + u32::from(self.s[self.i] - b'0');
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        Some(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn spaces(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
}

/// Parses date text as `CDate` does. Accepted forms (the documented examples and AD's own):
/// `yyyy-MM-dd`, `MM/dd/yyyy` (US order, as in Microsoft's `CDate("12/25/2007")` example),
/// each optionally followed by ` ` or `T` and `H:mm[:ss[.fff]]` with optional `AM`/`PM`,
/// then an optional zone `Z`, `±H`, `±HH:mm` or `±HHmm` (`"2013-01-10 4:00 PM -8"`);
/// and LDAP generalized time `yyyyMMddHHmmss[.f]Z` (whenCreated). No zone means UTC.
pub(super) fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let mut c = Cur {
        s: text.as_bytes(),
        i: 0,
    };
    let (year, month, day);
    // Generalized time: 14 digits in a row.
    if text.len() >= 14 && text.as_bytes()[..14].iter().all(u8::is_ascii_digit) {
        let y = c.digits(4, 4)?;
        let mo = c.digits(2, 2)?;
        let d = c.digits(2, 2)?;
        let h = c.digits(2, 2)?;
        let mi = c.digits(2, 2)?;
        let s = c.digits(2, 2)?;
        if c.eat(b'.') || c.eat(b',') {
            c.digits(1, 9)?;
        }
        let offset = zone(&mut c)?;
        if !c.done() {
            return None;
        }
        let secs = from_civil(Civil {
            year: i64::from(y),
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        })?;
        return Some(secs - offset);
    }
    let first = c.digits(1, 4)?;
    if c.eat(b'-') {
        year = first;
        month = c.digits(1, 2)?;
        if !c.eat(b'-') {
            return None;
        }
        day = c.digits(1, 2)?;
    } else if c.eat(b'/') {
        month = first;
        day = c.digits(1, 2)?;
        if !c.eat(b'/') {
            return None;
        }
        year = c.digits(4, 4)?;
    } else {
        return None;
    }
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if c.eat(b'T') || c.peek() == Some(b' ') {
        c.spaces();
        if c.peek().is_some_and(|b| b.is_ascii_digit()) {
            hour = c.digits(1, 2)?;
            if !c.eat(b':') {
                return None;
            }
            minute = c.digits(2, 2)?;
            if c.eat(b':') {
                second = c.digits(2, 2)?;
                if c.eat(b'.') {
                    c.digits(1, 9)?;
                }
            }
            c.spaces();
            let rest = c.s.get(c.i..c.i + 2).unwrap_or_default();
            let am = rest.eq_ignore_ascii_case(b"AM");
            let pm = rest.eq_ignore_ascii_case(b"PM");
            if am || pm {
                if !(1..=12).contains(&hour) {
                    return None;
                }
                hour %= 12;
                if pm {
                    hour += 12;
                }
                c.i += 2;
            }
        }
    }
    c.spaces();
    let offset = zone(&mut c)?;
    c.spaces();
    if !c.done() {
        return None;
    }
    let secs = from_civil(Civil {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
    })?;
    Some(secs - offset)
}

/// An optional zone designator → its offset east of UTC in seconds.
fn zone(c: &mut Cur<'_>) -> Option<i64> {
    match c.peek() {
        Some(b'Z') | Some(b'z') => {
            c.i += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let start = c.i;
            let h = c.digits(1, 2)?;
            let mut m = 0;
            let colon = c.eat(b':');
            if colon || (c.i - start == 2 && c.peek().is_some_and(|b| b.is_ascii_digit())) {
                m = c.digits(2, 2)?;
            }
            if h > 14 || m > 59 {
                return None;
            }
            let off = i64::from(h) * 3_600 + i64::from(m) * 60;
            Some(if sign == b'-' { -off } else { off })
        }
        _ => Some(0),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats a date with a .NET custom (or one-letter standard) date format, invariant culture,
/// in UTC. Err names the problem with the format string.
pub(super) fn format(secs: i64, fmt: &str) -> Result<String, String> {
    let standard = match fmt {
        "d" => Some("MM/dd/yyyy"),
        "D" => Some("dddd, dd MMMM yyyy"),
        "f" => Some("dddd, dd MMMM yyyy HH:mm"),
        "F" => Some("dddd, dd MMMM yyyy HH:mm:ss"),
        "g" => Some("MM/dd/yyyy HH:mm"),
        "G" => Some("MM/dd/yyyy HH:mm:ss"),
        "M" | "m" => Some("MMMM dd"),
        "o" | "O" => Some("yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK"),
        "r" | "R" => Some("ddd, dd MMM yyyy HH':'mm':'ss 'GMT'"),
        "s" => Some("yyyy'-'MM'-'dd'T'HH':'mm':'ss"),
        "t" => Some("HH:mm"),
        "T" => Some("HH:mm:ss"),
        "u" => Some("yyyy'-'MM'-'dd HH':'mm':'ss'Z'"),
        "U" => Some("dddd, dd MMMM yyyy HH:mm:ss"),
        "y" | "Y" => Some("yyyy MMMM"),
        _ => None,
    };
    let fmt = match standard {
        Some(f) => f,
        None if fmt.chars().count() == 1 && fmt.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Err(format!("unknown standard date format {fmt:?}"));
        }
        None => fmt,
    };
    let c = to_civil(secs);
    let weekday = (secs.div_euclid(DAY) + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == ch {
            n += 1;
        }
        let hour12 = match c.hour % 12 {
            0 => 12,
            h => h,
        };
        match ch {
            'y' => {
                let y = c.year;
                match n {
                    1 => out.push_str(&(y % 100).to_string()),
                    2 => out.push_str(&format!("{:02}", y.rem_euclid(100))),
                    _ => out.push_str(&format!("{:0width$}", y, width = n)),
                }
            }
            'M' => match n {
                1 => out.push_str(&c.month.to_string()),
                2 => out.push_str(&format!("{:02}", c.month)),
                3 => out.push_str(&MONTHS[(c.month as usize).saturating_sub(1) % 12][..3]),
                _ => out.push_str(MONTHS[(c.month as usize).saturating_sub(1) % 12]),
            },
            'd' => match n {
                1 => out.push_str(&c.day.to_string()),
                2 => out.push_str(&format!("{:02}", c.day)),
                3 => out.push_str(&DAYS[weekday][..3]),
                _ => out.push_str(DAYS[weekday]),
            },
            'H' => out.push_str(&pad2(c.hour, n)),
            'h' => out.push_str(&pad2(hour12, n)),
            'm' => out.push_str(&pad2(c.minute, n)),
            's' => out.push_str(&pad2(c.second, n)),
            'f' => {
                if n > 7 {
                    return Err("more than 7 'f' in a date format".to_string());
                }
                out.extend(std::iter::repeat_n('0', n));
            }
            'F' => {
                if n > 7 {
                    return Err("more than 7 'F' in a date format".to_string());
                }
            }
            't' => {
                let ampm = if c.hour < 12 { "AM" } else { "PM" };
                out.push_str(if n == 1 { &ampm[..1] } else { ampm });
            }
            'z' => out.push_str(match n {
                1 => "+0",
                2 => "+00",
                _ => "+00:00",
            }),
            'K' => {
                for _ in 0..n {
                    out.push('Z');
                }
            }
            '\'' | '"' => {
                // Quoted literal text up to the matching quote.
                let mut j = i + 1;
                while j < chars.len() && chars[j] != ch {
                    out.push(chars[j]);
                    j += 1;
                }
                if j >= chars.len() {
                    return Err("unterminated quote in a date format".to_string());
                }
                i = j + 1;
                continue;
            }
            '\\' => {
                match chars.get(i + 1) {
                    Some(&next) => out.push(next),
                    None => return Err("'\\' at the end of a date format".to_string()),
                }
                i += 2;
                continue;
            }
            '%' => {
                // `%d` is the one-letter custom specifier `d`; the `%` itself prints nothing.
                i += 1;
                continue;
            }
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    Ok(out)
}

fn pad2(v: u32, n: usize) -> String {
    if n == 1 {
        v.to_string()
    } else {
        format!("{v:02}")
    }
}

/// `DateAdd(interval, n, date)`: adds `n` intervals (`yyyy`, `q`, `m`, `y`, `d`, `w`, `ww`,
/// `h`, `n`, `s`). Adding months keeps the day, clamped to the month's last day (as VBA does).
/// None on overflow or a result outside 0001..9999; Err for an unknown interval.
pub(super) fn add(interval: &str, n: i64, secs: i64) -> Result<Option<i64>, String> {
    let seconds_per = match interval.to_ascii_lowercase().as_str() {
        "yyyy" => return Ok(add_months(secs, n.checked_mul(12))),
        "q" => return Ok(add_months(secs, n.checked_mul(3))),
        "m" => return Ok(add_months(secs, Some(n))),
        "y" | "d" | "w" => DAY,
        "ww" => 7 * DAY,
        "h" => 3_600,
        "n" => 60,
        "s" => 1,
        other => {
            return Err(format!(
                "unknown interval {other:?} (use yyyy, q, m, y, d, w, ww, h, n or s)"
            ));
        }
    };
    Ok(n.checked_mul(seconds_per)
        .and_then(|d| secs.checked_add(d))
        .filter(|s| in_range(*s)))
}

fn add_months(secs: i64, months: Option<i64>) -> Option<i64> {
    let months = months?;
    if !in_range(secs) {
        return None;
    }
    let c = to_civil(secs);
    let total = (c.year * 12 + i64::from(c.month) - 1).checked_add(months)?;
    let year = total.div_euclid(12);
    let month = (total.rem_euclid(12) + 1) as u32;
    if !(1..=9999).contains(&year) {
        return None;
    }
    let day = c.day.min(days_in_month(year, month));
    from_civil(Civil {
        year,
        month,
        day,
        ..c
    })
}
