//! Budget periods and their UTC windows, plus integer micro-dollar amounts written as decimal
//! USD strings.
//!
//! Invariants: a window is half-open `[start, end)` in UTC; every instant falls in exactly
//! one window of a period, named by its `key` (`2026-11-23`, `2026-11`, `total`). Money is
//! converted between decimal text and micro-dollars without floats.

use time::{Date, Month, OffsetDateTime, Time};

use crate::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetPeriod {
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    Month,
    /// Since the budget exists, without reset.
    Total,
}

/// One reset window of a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub key: String,
    pub start: Timestamp,
    /// Exclusive.
    pub end: Timestamp,
}

fn millis(date: Date) -> Timestamp {
    let instant = date.with_time(Time::MIDNIGHT).assume_utc();
    Timestamp::from_unix_millis(
        i64::try_from(instant.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
    )
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
            Self::Total => "total",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Day, Self::Month, Self::Total]
            .into_iter()
            .find(|period| period.as_str() == text)
    }

    /// The window `at` falls in.
    pub fn window(self, at: Timestamp) -> Window {
        let date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.unix_millis()) * 1_000_000)
                .map(OffsetDateTime::date)
                .unwrap_or(Date::MIN);
        match self {
            Self::Day => Window {
                key: format!(
                    "{:04}-{:02}-{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                ),
                start: millis(date),
                end: date
                    .next_day()
                    .map_or(Timestamp::from_unix_millis(i64::MAX), millis),
            },
            Self::Month => {
                let first = date.replace_day(1).unwrap_or(date);
                let next = match date.month() {
                    Month::December => Date::from_calendar_date(date.year() + 1, Month::January, 1),
                    month => Date::from_calendar_date(date.year(), month.next(), 1),
                };
                Window {
                    key: format!("{:04}-{:02}", date.year(), u8::from(date.month())),
                    start: millis(first),
                    end: next.map_or(Timestamp::from_unix_millis(i64::MAX), millis),
                }
            }
            Self::Total => Window {
                key: "total".to_owned(),
                start: Timestamp::from_unix_millis(0),
                end: Timestamp::from_unix_millis(i64::MAX),
            },
        }
    }
}

/// `"12.50"` USD → 12 500 000 micro-dollars. At most six decimals; no sign, no exponent.
pub fn parse_usd(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || fraction.len() > 6
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(fraction)
}

/// 12 500 000 micro-dollars → `"12.500000"`: always six decimals, so amounts compare as text.
pub fn format_usd(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let magnitude = micro.unsigned_abs();
    format!(
        "{sign}{}.{:06}",
        magnitude / 1_000_000,
        magnitude % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn windows_are_utc_calendar_days_and_months() {
        let day = BudgetPeriod::Day.window(at("2026-11-23T23:59:59.999Z"));
        assert_eq!(day.key, "2026-11-23");
        assert_eq!(day.start, at("2026-11-23T00:00:00Z"));
        assert_eq!(day.end, at("2026-11-24T00:00:00Z"));
        let month = BudgetPeriod::Month.window(at("2026-12-31T12:00:00Z"));
        assert_eq!(month.key, "2026-12");
        assert_eq!(month.start, at("2026-12-01T00:00:00Z"));
        assert_eq!(month.end, at("2027-01-01T00:00:00Z"));
        let february = BudgetPeriod::Month.window(at("2028-02-29T00:00:00Z"));
        assert_eq!(february.end, at("2028-03-01T00:00:00Z"));
        assert_eq!(
            BudgetPeriod::Total.window(at("2026-01-01T00:00:00Z")).key,
            "total"
        );
        // The instant a window ends belongs to the next one.
        assert_eq!(BudgetPeriod::Day.window(day.end).key, "2026-11-24");
    }

    #[test]
    fn usd_amounts_round_trip_without_floats() {
        assert_eq!(parse_usd("12.5"), Some(12_500_000));
        assert_eq!(parse_usd("0.000001"), Some(1));
        assert_eq!(parse_usd("7"), Some(7_000_000));
        for bad in ["", "-1", "1e3", "0.0000001", ".5", "1,5", "NaN"] {
            assert_eq!(parse_usd(bad), None, "{bad}");
        }
        assert_eq!(format_usd(12_500_000), "12.500000");
        assert_eq!(format_usd(1), "0.000001");
        assert_eq!(format_usd(-1), "-0.000001");
    }
}
