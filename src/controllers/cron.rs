//! Cron schedules as the CronJob controller reads them (robfig/cron v3 `ParseStandard`):
//! five fields `minute hour day-of-month month day-of-week` with `*`, `?`, lists (`1,5`),
//! ranges (`1-5`), steps (`*/15`, `0-30/10`, `5/10` = `5-max/10`), month names (`JAN`…`DEC`)
//! and weekday names (`SUN`…`SAT`, 0 = Sunday, case-insensitive), the macros `@yearly`
//! (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`), `@hourly` and `@every <dur>`.
//!
//! A `TZ=<zone> ` or `CRON_TZ=<zone> ` prefix is parsed as robfig does, although
//! kube-apiserver's validation rejects it in `spec.schedule` (`spec.timeZone` is the way).
//!
//! [`Schedule::next`] walks wall-clock fields in the schedule's zone the way robfig's
//! `SpecSchedule.Next` does, so daylight-saving transitions behave the same: a time inside a
//! spring-forward gap is skipped, a time inside a fall-back fold fires for both offsets.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// Why a schedule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five fields.
    #[error("expected exactly 5 fields, found {found}: {spec:?}")]
    FieldCount {
        /// How many fields the spec had.
        found: usize,
        /// The spec.
        spec: String,
    },
    /// A field value is not a number or name, or out of its range.
    #[error("{0}")]
    Field(String),
    /// An unknown `@` macro.
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    /// An unknown time zone in a `TZ=` prefix or `spec.timeZone`.
    #[error("provided bad location {0}: unknown time zone")]
    Location(String),
    /// The schedule is empty.
    #[error("empty spec string")]
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Bit sets per field (bit 63 = the field was `*`/`?`).
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every <duration>`, whole seconds.
    Every(i64),
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    /// The zone from a `TZ=`/`CRON_TZ=` prefix.
    zone: Option<TimeZone>,
}

const STAR: u64 = 1 << 63;

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parses a standard (five-field) schedule.
pub fn parse(spec: &str) -> Result<Schedule, CronError> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err(CronError::Empty);
    }
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (Some(eq), Some(sp)) = (spec.find('='), spec.find(' ')) else {
            return Err(CronError::Location(spec.to_string()));
        };
        if sp < eq {
            return Err(CronError::Location(spec.to_string()));
        }
        let name = &spec[eq + 1..sp];
        zone = Some(load_zone(name)?);
        spec = spec[sp..].trim();
    }
    let kind = if let Some(desc) = spec.strip_prefix('@') {
        descriptor(desc, spec)?
    } else {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                found: fields.len(),
                spec: spec.to_string(),
            });
        }
        Kind::Fields {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
        }
    };
    Ok(Schedule { kind, zone })
}

/// Loads a time zone by IANA name from the system tzdb (what `time.LoadLocation` does);
/// `""` and `UTC` are UTC.
pub fn load_zone(name: &str) -> Result<TimeZone, CronError> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        // Go's LoadLocation accepts "Local"; the controller's local zone is UTC here.
        "Local" => Ok(TimeZone::UTC),
        _ => TimeZone::get(name).map_err(|_| CronError::Location(name.to_string())),
    }
}

fn descriptor(desc: &str, spec: &str) -> Result<Kind, CronError> {
    let fields = |m: &str, h: &str, dom: &str, mon: &str, dow: &str| -> Result<Kind, CronError> {
        Ok(Kind::Fields {
            minute: field(m, &MINUTES)?,
            hour: field(h, &HOURS)?,
            dom: field(dom, &DOM)?,
            month: field(mon, &MONTHS)?,
            dow: field(dow, &DOW)?,
        })
    };
    match desc {
        "yearly" | "annually" => fields("0", "0", "1", "1", "*"),
        "monthly" => fields("0", "0", "1", "*", "*"),
        "weekly" => fields("0", "0", "*", "*", "0"),
        "daily" | "midnight" => fields("0", "0", "*", "*", "*"),
        "hourly" => fields("0", "*", "*", "*", "*"),
        _ => {
            if let Some(d) = desc.strip_prefix("every ") {
                let nanos = go_duration(d.trim())
                    .ok_or_else(|| CronError::Field(format!("failed to parse duration {spec}")))?;
                let secs = (nanos / 1_000_000_000).max(1);
                Ok(Kind::Every(secs))
            } else {
                Err(CronError::Descriptor(spec.to_string()))
            }
        }
    }
}

/// Parses a Go duration string (`1h30m`, `90s`, `1.5h`) into nanoseconds.
fn go_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(total as i64)
}

fn field(expr: &str, b: &Bounds) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for part in expr.split(',') {
        bits |= range(part, b)?;
    }
    Ok(bits)
}

fn number(s: &str, b: &Bounds) -> Result<u32, CronError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        // Month names start at 1, weekday names at 0.
        return Ok(i as u32 + b.min);
    }
    s.parse::<u32>()
        .map_err(|_| CronError::Field(format!("failed to parse int from {s}")))
}

fn range(expr: &str, b: &Bounds) -> Result<u64, CronError> {
    let (range_part, step_part) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    if step_part.is_some_and(|s| s.contains('/')) {
        return Err(CronError::Field(format!("too many slashes: {expr}")));
    }
    let mut extra = 0u64;
    let (start, mut end, single) = if range_part == "*" || range_part == "?" {
        extra = STAR;
        (b.min, b.max, false)
    } else {
        match range_part.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(CronError::Field(format!("too many hyphens: {expr}")));
                }
                (number(lo, b)?, number(hi, b)?, false)
            }
            None => {
                let n = number(range_part, b)?;
                (n, n, true)
            }
        }
    };
    let step = match step_part {
        None => 1,
        Some(s) => {
            let step: u32 = s
                .parse()
                .map_err(|_| CronError::Field(format!("failed to parse int from {s}")))?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
    };
    if start < b.min {
        return Err(CronError::Field(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        )));
    }
    if end > b.max {
        return Err(CronError::Field(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        )));
    }
    if start > end {
        return Err(CronError::Field(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(CronError::Field(format!(
            "step of range should be a positive number: {expr}"
        )));
    }
    let mut bits = 0u64;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok(bits | extra)
}

fn has(bits: u64, v: i32) -> bool {
    (0..63).contains(&v) && bits & (1u64 << v) != 0
}

/// The instant of a wall-clock time in `tz`, taking the earlier of the two candidate instants
/// both in a fold and in a gap, which is what Go's `time.Date` resolves to.
fn at(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    tz.to_ambiguous_zoned(dt)
        .earlier()
        .ok()
        .map(|z| z.timestamp())
}

impl Schedule {
    /// The zone of a `TZ=` prefix, if any.
    pub fn zone(&self) -> Option<&TimeZone> {
        self.zone.as_ref()
    }

    /// The first activation strictly after `after`, evaluated in the prefix zone or else
    /// `tz`; `None` when nothing matches within five years (e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let tz = self.zone.as_ref().unwrap_or(tz);
        let (minute, hour, dom, month, dow) = match self.kind {
            Kind::Every(secs) => {
                let sub = SignedDuration::from_nanos(i64::from(after.subsec_nanosecond()));
                return after
                    .checked_add(SignedDuration::from_secs(secs))
                    .ok()?
                    .checked_sub(sub)
                    .ok();
            }
            Kind::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (minute, hour, dom, month, dow),
        };
        // Start at the next whole second.
        let sub = SignedDuration::from_nanos(i64::from(after.subsec_nanosecond()));
        let mut t = after
            .checked_sub(sub)
            .ok()?
            .checked_add(SignedDuration::from_secs(1))
            .ok()?;
        let year_limit = t.to_zoned(tz.clone()).year() + 5;
        let day_matches = |dt: &DateTime| -> bool {
            let dom_match = has(dom, i32::from(dt.day()));
            let dow_match = has(dow, i32::from(dt.weekday().to_sunday_zero_offset()));
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_match && dow_match
            } else {
                dom_match || dow_match
            }
        };
        let hour_d = SignedDuration::from_hours(1);
        let min_d = SignedDuration::from_mins(1);
        let mut added = false;
        'wrap: loop {
            let dt = t.to_zoned(tz.clone()).datetime();
            if dt.year() > year_limit {
                return None;
            }
            // Month.
            let mut dt = dt;
            while !has(month, i32::from(dt.month())) {
                if !added {
                    added = true;
                    t = at(
                        tz,
                        jiff::civil::date(dt.year(), dt.month(), 1).at(0, 0, 0, 0),
                    )?;
                    dt = t.to_zoned(tz.clone()).datetime();
                }
                let next = dt.date().first_of_month().checked_add(1.month()).ok()?;
                t = at(tz, next.to_datetime(dt.time()))?;
                dt = t.to_zoned(tz.clone()).datetime();
                if dt.month() == 1 {
                    continue 'wrap;
                }
            }
            // Day.
            while !day_matches(&dt) {
                if !added {
                    added = true;
                    t = at(tz, dt.date().at(0, 0, 0, 0))?;
                    dt = t.to_zoned(tz.clone()).datetime();
                }
                let next = dt.date().checked_add(1.day()).ok()?;
                t = at(tz, next.to_datetime(dt.time()))?;
                dt = t.to_zoned(tz.clone()).datetime();
                // A DST change at midnight moves the wall clock off 00:00: pull it back.
                if dt.hour() != 0 {
                    let h = i64::from(dt.hour());
                    let shift = if h > 12 {
                        SignedDuration::from_hours(24 - h)
                    } else {
                        SignedDuration::from_hours(-h)
                    };
                    t = t.checked_add(shift).ok()?;
                    dt = t.to_zoned(tz.clone()).datetime();
                }
                if dt.day() == 1 {
                    continue 'wrap;
                }
            }
            // Hour.
            while !has(hour, i32::from(dt.hour())) {
                if !added {
                    added = true;
                    t = at(tz, dt.date().at(dt.hour(), 0, 0, 0))?;
                }
                t = t.checked_add(hour_d).ok()?;
                dt = t.to_zoned(tz.clone()).datetime();
                if dt.hour() == 0 {
                    continue 'wrap;
                }
            }
            // Minute.
            while !has(minute, i32::from(dt.minute())) {
                if !added {
                    added = true;
                    t = truncate(t, 60)?;
                }
                t = t.checked_add(min_d).ok()?;
                dt = t.to_zoned(tz.clone()).datetime();
                if dt.minute() == 0 {
                    continue 'wrap;
                }
            }
            // Second (always 0 in a standard schedule).
            if dt.second() != 0 {
                if !added {
                    added = true;
                }
                t = truncate(t, 1)?;
                let to_next_minute = 60 - i64::from(dt.second());
                t = t
                    .checked_add(SignedDuration::from_secs(to_next_minute))
                    .ok()?;
                continue 'wrap;
            }
            return Some(t);
        }
    }
}

fn truncate(t: Timestamp, secs: i64) -> Option<Timestamp> {
    let s = t.as_second().div_euclid(secs) * secs;
    Timestamp::from_second(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_rejects() {
        let ok = [
            "* * * * *",
            "*/5 1-3 1,15 JAN-mar mon-FRI",
            "0 0 ? * SUN",
            "@hourly",
            "@every 1h30m",
            "TZ=America/New_York 0 9 * * *",
            "5/10 * * * *",
        ];
        for s in ok {
            assert!(parse(s).is_ok(), "{s}");
        }
        let bad = [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "5-1 * * * *",
            "@fortnightly",
            "TZ=Nowhere/Land * * * * *",
            "a * * * *",
        ];
        for s in bad {
            assert!(parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn next_runs_table() {
        let utc = TimeZone::UTC;
        let cases: &[(&str, &str, &str)] = &[
            (
                "*/1 * * * *",
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:01:00Z",
            ),
            (
                "*/1 * * * *",
                "2024-01-01T00:00:30Z",
                "2024-01-01T00:01:00Z",
            ),
            (
                "*/15 * * * *",
                "2024-01-01T00:14:59Z",
                "2024-01-01T00:15:00Z",
            ),
            ("0 * * * *", "2024-01-01T23:30:00Z", "2024-01-02T00:00:00Z"),
            ("@hourly", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"),
            ("@daily", "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z"),
            ("@monthly", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("@yearly", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            // Sunday 2024-01-07.
            ("@weekly", "2024-01-03T00:00:00Z", "2024-01-07T00:00:00Z"),
            (
                "30 9 * * MON-FRI",
                "2024-01-05T10:00:00Z",
                "2024-01-08T09:30:00Z",
            ),
            // dom OR dow when both are restricted: the 13th or any Friday.
            ("0 0 13 * 5", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            (
                "0 12 1 JAN,jul *",
                "2024-02-01T00:00:00Z",
                "2024-07-01T12:00:00Z",
            ),
            (
                "@every 90s",
                "2024-01-01T00:00:00.5Z",
                "2024-01-01T00:01:30Z",
            ),
        ];
        for (spec, after, want) in cases {
            let s = parse(spec).unwrap();
            assert_eq!(
                s.next(ts(after), &utc),
                Some(ts(want)),
                "{spec} after {after}"
            );
        }
        assert_eq!(
            parse("0 0 30 2 *")
                .unwrap()
                .next(ts("2024-01-01T00:00:00Z"), &utc),
            None
        );
    }

    #[test]
    fn new_york_across_dst() {
        let ny = load_zone("America/New_York").unwrap();
        let cases: &[(&str, &str, &str)] = &[
            // 09:00 EST = 14:00Z; after the spring change 09:00 EDT = 13:00Z.
            ("0 9 * * *", "2024-03-09T15:00:00Z", "2024-03-10T13:00:00Z"),
            ("0 9 * * *", "2024-03-08T15:00:00Z", "2024-03-09T14:00:00Z"),
            // 02:30 does not exist on 2024-03-10: skipped to the next day.
            ("30 2 * * *", "2024-03-09T08:00:00Z", "2024-03-11T06:30:00Z"),
            // 01:30 happens twice on 2024-11-03: EDT (05:30Z) then EST (06:30Z).
            ("30 1 * * *", "2024-11-03T04:00:00Z", "2024-11-03T05:30:00Z"),
            ("30 1 * * *", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"),
            ("30 1 * * *", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"),
            // Hourly across the spring gap: 01:00 EST → 03:00 EDT is one hour.
            ("0 * * * *", "2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z"),
            (
                "TZ=UTC 0 9 * * *",
                "2024-03-10T10:00:00Z",
                "2024-03-11T09:00:00Z",
            ),
        ];
        for (spec, after, want) in cases {
            let s = parse(spec).unwrap();
            assert_eq!(
                s.next(ts(after), &ny),
                Some(ts(want)),
                "{spec} after {after}"
            );
        }
    }
}
