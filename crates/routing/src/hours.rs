//! Business hours and calendar arithmetic in a target's time zone: whether a target is open, and
//! when the local calendar hour, day or month of an instant ends (DST-correct via chrono-tz).

use crate::Millis;
use callopt_domain::Target;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Whether a target is open at `now_ms` (no hours = always open); DST-correct via chrono-tz.
pub fn is_open(target: &Target, now_ms: Millis) -> bool {
    let Some(hours) = &target.hours else {
        return true;
    };
    let local = local_time(hours.time_zone, now_ms);
    let day = local.weekday().num_days_from_monday() as usize;
    let minute = (local.hour() * 60 + local.minute()) as u16;
    hours.days[day]
        .iter()
        .any(|i| i.start <= minute && minute < i.end)
}

/// The zone whose calendar a target's hourly, daily and monthly caps follow: its business hours'
/// zone, UTC when it has none.
pub(crate) fn cap_zone(target: &Target) -> Tz {
    target.hours.as_ref().map_or(Tz::UTC, |h| h.time_zone)
}

/// The ends of the local hour, day and month that contain `now_ms` in the calendar of the
/// target's caps: what names the periods its calendar caps count over, wherever they are kept.
pub fn cap_periods(target: &Target, now_ms: Millis) -> [Millis; 3] {
    let zone = cap_zone(target);
    [Period::Hour, Period::Day, Period::Month].map(|p| period_end(zone, p, now_ms))
}

/// The starts of the local hour, day and month that contain `now_ms` in the calendar of the
/// target's caps (the instants [`cap_periods`] ended the periods before them at).
pub fn cap_period_starts(target: &Target, now_ms: Millis) -> [Millis; 3] {
    let zone = cap_zone(target);
    [Period::Hour, Period::Day, Period::Month].map(|p| period_start(zone, p, now_ms))
}

/// The instant (ms) at which the local `period` that contains `now_ms` began in `zone`; the
/// counterpart of [`period_end`], with the same rules for repeated and skipped local times.
pub(crate) fn period_start(zone: Tz, period: Period, now_ms: Millis) -> Millis {
    let local = local_time(zone, now_ms);
    let date = local.date();
    let boundary = match period {
        Period::Hour => date.and_hms_opt(local.hour(), 0, 0),
        Period::Day => date.and_hms_opt(0, 0, 0),
        Period::Month => date.with_day(1).and_then(|d| d.and_hms_opt(0, 0, 0)),
    };
    match boundary {
        Some(b) => first_instant_at_or_after(zone, b).min(now_ms),
        None => Millis::MIN,
    }
}

/// A calendar period that a cap counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    /// The local clock hour.
    Hour,
    /// The local day.
    Day,
    /// The local calendar month.
    Month,
}

/// The instant (ms) at which the local `period` that contains `now_ms` ends in `zone`: the first
/// instant of the next one. A repeated local hour (clocks going back) is one period; a boundary
/// that falls in a skipped stretch (clocks going forward) is the first instant after the gap.
pub(crate) fn period_end(zone: Tz, period: Period, now_ms: Millis) -> Millis {
    let local = local_time(zone, now_ms);
    let date = local.date();
    let boundary = match period {
        Period::Hour => date
            .and_hms_opt(local.hour(), 0, 0)
            .map(|h| h + Duration::hours(1)),
        Period::Day => date.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)),
        Period::Month => {
            let (y, m) = if date.month() == 12 {
                (date.year() + 1, 1)
            } else {
                (date.year(), date.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
        }
    };
    match boundary {
        Some(b) => first_instant_at_or_after(zone, b).max(now_ms + 1),
        None => Millis::MAX,
    }
}

/// The first instant whose local time in `zone` is `local` or later: `local` itself when it
/// exists (the earlier one when it is ambiguous), else the end of the gap it falls in.
fn first_instant_at_or_after(zone: Tz, local: NaiveDateTime) -> Millis {
    let mut candidate = local;
    // Gaps are whole quarters of an hour; the longest ever recorded skipped a day.
    for _ in 0..200 {
        if let Some(t) = zone.from_local_datetime(&candidate).earliest() {
            return t.timestamp_millis();
        }
        candidate += Duration::minutes(15);
    }
    Millis::MAX
}

/// The local wall-clock time of an instant in a zone.
fn local_time(zone: Tz, now_ms: Millis) -> NaiveDateTime {
    let utc = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    zone.from_utc_datetime(&utc.naive_utc()).naive_local()
}
