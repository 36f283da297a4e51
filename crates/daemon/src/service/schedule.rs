//! When the next scheduled cycle fires: a six-field cron expression (seconds first)
//! evaluated in an IANA time zone, correct across daylight-saving changes.
//!
//! Why not `tokio_cron_scheduler::JobScheduler`: its `new_async_tz` converts the zone to
//! the UTC offset in force when the job is created (its issue #107), so a job made in
//! winter for 03:17 Europe/Berlin fires at 04:17 all summer; its ticker also wakes every
//! 500 ms and reads the real clock, which an idle daemon and a DST test cannot afford.
//! We keep its cron dialect exactly (same `croner` parser, same options) and compute every
//! fire time ourselves from wall-clock rules, re-arming a single timer after each one.
//!
//! DST rules follow Vixie cron, which users already know:
//! - a *fixed-time* job (no `*`, `?` or `/` in the minute and hour fields, e.g.
//!   `0 30 2 * * *` or `0 0,30 2 * * *`) never loses nor doubles a run: a local time that
//!   is skipped (spring forward) fires at the first instant after the gap, once even if
//!   several fall in it; a local time that happens twice (fall back) fires the first time;
//! - an *interval* job (`*` or a step in the minute or hour field, e.g. `0 */30 * * * *`)
//!   follows real time: skipped local times are skipped, and a repeated hour is run
//!   through twice.

use std::fmt;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// No zone has shifted by more than this at once in modern tzdata (Antarctica/Troll: 2 h);
/// it bounds how far around a transition the search has to look.
const MAX_DST_SHIFT: Duration = Duration::hours(3);
/// Longest clock gap we bridge for a fixed-time job (Samoa skipped a whole day in 2011).
const MAX_GAP: Duration = Duration::hours(26);
/// Guards against pathological expressions; a per-second cron needs a few thousand
/// candidates at most, around a repeated hour.
const MAX_CANDIDATES: usize = 100_000;

/// A parsed `[schedule]`: the cron expression and the zone it is read in.
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
    fixed_time: bool,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("cron", &self.expression)
            .field("timezone", &self.timezone)
            .finish()
    }
}

/// The expression is not a cron expression tokio-cron-scheduler would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expression:?}: {reason}")]
pub struct ScheduleError {
    pub expression: String,
    pub reason: String,
}

impl Schedule {
    /// Parses `expression` exactly as tokio-cron-scheduler 0.15 does (seconds required,
    /// optional year, day-of-month AND day-of-week must both match).
    pub fn new(expression: &str, timezone: Tz) -> Result<Self, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expression)
            .map_err(|err| ScheduleError {
                expression: expression.to_string(),
                reason: err.to_string(),
            })?;
        let fixed_time = is_fixed_time(expression);
        let schedule = Schedule {
            expression: expression.to_string(),
            cron,
            timezone,
            fixed_time,
        };
        Ok(schedule)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first fire time strictly after `after`, or `None` when the expression never
    /// fires again (e.g. `0 0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Naive local times are not ordered like instants around a fall-back: the
        // second pass through 02:xx comes after the first pass's 02:59 in real time.
        // Start early enough to see such times, then keep the earliest instant.
        let offset_now = self.offset_at(after);
        let offset_soon = self.offset_at(after + MAX_DST_SHIFT);
        let lookback = (offset_now - offset_soon).max(Duration::zero());
        // Whole seconds: croner keeps the sub-second part of its start time, and a
        // timer armed for 03:17:00.329 is as wrong in a log as it is in a test.
        let start = (self.local(after) - lookback).with_nanosecond(0)?;

        let mut best: Option<DateTime<Utc>> = None;
        let mut candidate = self.next_naive(start, true)?;
        for _ in 0..MAX_CANDIDATES {
            if let Some(best) = best {
                // Any later local time maps to an instant at or after `local - max offset`.
                let highest_offset = offset_now.max(self.offset_at(best));
                if candidate.and_utc() - highest_offset > best {
                    return Some(best);
                }
            }
            for instant in self.instants_of(candidate) {
                if instant > after && best.is_none_or(|b| instant < b) {
                    best = Some(instant);
                }
            }
            candidate = match self.next_naive(candidate, false) {
                Some(next) => next,
                None => return best,
            };
        }
        best
    }

    /// The time between the next two fire times after `now`: what "one interval" means
    /// for catch-up. `None` when the schedule fires fewer than twice more.
    pub fn interval_at(&self, now: DateTime<Utc>) -> Option<Duration> {
        let first = self.next_after(now)?;
        let second = self.next_after(first)?;
        Some(second - first)
    }

    /// The instants at which the wall clock shows `local`, filtered by the DST rules above.
    fn instants_of(&self, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(at) => vec![at.with_timezone(&Utc)],
            LocalResult::Ambiguous(first, second) => {
                if self.fixed_time {
                    vec![first.with_timezone(&Utc)]
                } else {
                    vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
                }
            }
            LocalResult::None if self.fixed_time => self.end_of_gap(local).into_iter().collect(),
            LocalResult::None => Vec::new(),
        }
    }

    /// The first instant after the clock gap containing `local`. tzdata gaps start and
    /// end on whole minutes, so walking minutes finds the exact end.
    fn end_of_gap(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut probe = local.with_second(0)?;
        let limit = local + MAX_GAP;
        while probe <= limit {
            probe += Duration::minutes(1);
            match self.timezone.from_local_datetime(&probe) {
                LocalResult::Single(at) => return Some(at.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
                LocalResult::None => {}
            }
        }
        None
    }

    /// The next local time matching the pattern, ignoring zones: croner evaluated in UTC,
    /// where every local time exists exactly once.
    fn next_naive(&self, from: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&from.and_utc(), inclusive)
            .ok()
            .map(|at| at.naive_utc())
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.timezone).naive_local()
    }

    fn offset_at(&self, at: DateTime<Utc>) -> Duration {
        let seconds = self
            .timezone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc();
        Duration::seconds(i64::from(seconds))
    }
}

/// Vixie cron's distinction (its `MIN_STAR`/`HR_STAR` flags), extended to steps: croner's
/// own `determine_job_type` also calls lists like `0,30` intervals, which would let a
/// backup scheduled at `0 0,30 2 * * *` silently skip the spring-forward day.
fn is_fixed_time(expression: &str) -> bool {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    // Seconds first: minutes and hours are the second and third fields.
    fields
        .get(1..3)
        .is_some_and(|fields| fields.iter().all(|field| !field.contains(['*', '?', '/'])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn fires(schedule: &Schedule, from: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        for _ in 0..count {
            at = schedule.next_after(at).expect("schedule fires");
            out.push(at);
        }
        out
    }

    fn local_hm(at: DateTime<Utc>) -> (NaiveDate, u32, u32) {
        let local = at.with_timezone(&berlin());
        (local.date_naive(), local.hour(), local.minute())
    }

    // EU rules: clocks go forward on the last Sunday of March (2026-03-29, 02:00 CET ->
    // 03:00 CEST, i.e. 01:00 UTC) and back on the last Sunday of October (2026-10-25,
    // 03:00 CEST -> 02:00 CET, i.e. 01:00 UTC).

    #[test]
    fn daily_local_job_keeps_its_wall_clock_time_across_spring_forward() {
        let schedule = Schedule::new("0 17 3 * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 3, 27, 12, 0), 4);
        assert_eq!(
            got,
            [
                utc(2026, 3, 28, 2, 17), // CET, UTC+1
                utc(2026, 3, 29, 1, 17), // CEST, UTC+2: 23 h later
                utc(2026, 3, 30, 1, 17),
                utc(2026, 3, 31, 1, 17),
            ]
        );
        for at in got {
            let (_, h, m) = local_hm(at);
            assert_eq!((h, m), (3, 17), "{at}");
        }
    }

    #[test]
    fn daily_local_job_keeps_its_wall_clock_time_across_fall_back() {
        let schedule = Schedule::new("0 17 3 * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 10, 23, 12, 0), 4);
        assert_eq!(
            got,
            [
                utc(2026, 10, 24, 1, 17), // CEST
                utc(2026, 10, 25, 2, 17), // CET: 25 h later
                utc(2026, 10, 26, 2, 17),
                utc(2026, 10, 27, 2, 17),
            ]
        );
    }

    #[test]
    fn fixed_offset_behaviour_of_issue_107_would_drift_by_an_hour() {
        // What a job created in winter with the offset frozen at +01:00 would do in summer:
        // fire at 02:17 UTC = 04:17 CEST. Our schedule fires at 03:17 CEST instead.
        let schedule = Schedule::new("0 17 3 * * *", berlin()).unwrap();
        let frozen = chrono::FixedOffset::east_opt(3600).unwrap();
        let frozen_fire = frozen
            .with_ymd_and_hms(2026, 6, 1, 3, 17, 0)
            .unwrap()
            .with_timezone(&Utc);
        let ours = schedule.next_after(utc(2026, 5, 31, 12, 0)).unwrap();
        assert_eq!(ours, utc(2026, 6, 1, 1, 17));
        assert_eq!(frozen_fire - ours, Duration::hours(1));
    }

    #[test]
    fn skipped_local_time_fires_once_right_after_the_gap() {
        // 02:30 does not exist on 2026-03-29 in Berlin.
        let schedule = Schedule::new("0 30 2 * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 3, 28, 12, 0), 2);
        assert_eq!(
            got,
            [
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST, the first instant after the gap
                utc(2026, 3, 30, 0, 30), // 02:30 CEST the next day
            ]
        );
        // A list of times inside the same gap still fires only once.
        let schedule = Schedule::new("0 0,30 2 * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 3, 28, 23, 0), 2);
        assert_eq!(got, [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)]);
    }

    #[test]
    fn repeated_local_time_fires_once_at_its_first_occurrence() {
        // 02:30 happens twice on 2026-10-25: at 00:30 UTC (CEST) and at 01:30 UTC (CET).
        let schedule = Schedule::new("0 30 2 * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 10, 24, 12, 0), 2);
        assert_eq!(got, [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]);
    }

    #[test]
    fn started_inside_the_repeated_hour_never_returns_a_past_time() {
        // 02:10 CET, second pass: the 02:30 of today already fired at 02:30 CEST.
        let schedule = Schedule::new("0 30 2 * * *", berlin()).unwrap();
        let after = utc(2026, 10, 25, 1, 10);
        assert_eq!(schedule.next_after(after), Some(utc(2026, 10, 26, 1, 30)));
    }

    #[test]
    fn interval_job_follows_real_time_through_the_repeated_hour() {
        let schedule = Schedule::new("0 */30 * * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 10, 24, 23, 40), 6);
        assert_eq!(
            got,
            [
                utc(2026, 10, 25, 0, 0),  // 02:00 CEST
                utc(2026, 10, 25, 0, 30), // 02:30 CEST
                utc(2026, 10, 25, 1, 0),  // 02:00 CET
                utc(2026, 10, 25, 1, 30), // 02:30 CET
                utc(2026, 10, 25, 2, 0),  // 03:00 CET
                utc(2026, 10, 25, 2, 30),
            ]
        );
    }

    #[test]
    fn interval_job_skips_the_missing_hour() {
        let schedule = Schedule::new("0 */30 * * * *", berlin()).unwrap();
        let got = fires(&schedule, utc(2026, 3, 29, 0, 10), 3);
        assert_eq!(
            got,
            [
                utc(2026, 3, 29, 0, 30), // 01:30 CET
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST
                utc(2026, 3, 29, 1, 30),
            ]
        );
    }

    #[test]
    fn fire_times_are_whole_seconds() {
        let schedule = Schedule::new("0 17 3 * * *", berlin()).unwrap();
        let after = utc(2026, 6, 1, 12, 0) + Duration::milliseconds(329);
        assert_eq!(schedule.next_after(after), Some(utc(2026, 6, 2, 1, 17)));
        // Just past a fire time, by less than a second: the next one, not the same.
        let just_after = utc(2026, 6, 2, 1, 17) + Duration::milliseconds(1);
        assert_eq!(
            schedule.next_after(just_after),
            Some(utc(2026, 6, 3, 1, 17))
        );
        let every_second = Schedule::new("* * * * * *", chrono_tz::UTC).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::milliseconds(999);
        assert_eq!(
            every_second.next_after(at),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap())
        );
    }

    #[test]
    fn job_kinds() {
        assert!(is_fixed_time("0 17 3 * * *"));
        assert!(is_fixed_time("0 0,30 2 * * MON-FRI"));
        assert!(is_fixed_time("*/10 17 3 * * *"));
        assert!(!is_fixed_time("0 */30 * * * *"));
        assert!(!is_fixed_time("0 0 * * * *"));
        assert!(!is_fixed_time("*/2 * * * * *"));
    }

    #[test]
    fn every_two_seconds_is_two_seconds_apart() {
        let schedule = Schedule::new("*/2 * * * * *", chrono_tz::UTC).unwrap();
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap();
        assert_eq!(
            fires(&schedule, from, 2),
            [from + Duration::seconds(1), from + Duration::seconds(3)]
        );
        assert_eq!(schedule.interval_at(from), Some(Duration::seconds(2)));
    }

    #[test]
    fn impossible_date_never_fires_and_bad_syntax_is_rejected() {
        let never = Schedule::new("0 0 0 30 2 *", berlin()).unwrap();
        assert_eq!(never.next_after(utc(2026, 1, 1, 0, 0)), None);
        let err = Schedule::new("0 17 25 * * *", berlin()).unwrap_err();
        assert!(err.to_string().contains("0 17 25"), "{err}");
        assert!(Schedule::new("17 3 * * *", berlin()).is_err());
    }

    #[test]
    fn daily_interval_is_a_day() {
        let schedule = Schedule::new("0 17 3 * * *", berlin()).unwrap();
        assert_eq!(
            schedule.interval_at(utc(2026, 6, 1, 12, 0)),
            Some(Duration::days(1))
        );
    }
}
