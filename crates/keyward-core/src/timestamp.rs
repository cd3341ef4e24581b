//! Wall-clock instants as integer milliseconds since the Unix epoch, the form the store keeps,
//! shown to users as RFC 3339 in UTC.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Milliseconds in a day (UTC days have no leap seconds in Unix time).
pub const DAY_MILLIS: i64 = 86_400_000;

/// The text is not an RFC 3339 date-time.
#[derive(Debug, thiserror::Error)]
#[error("expected an RFC 3339 date-time such as 2026-12-31T23:59:59Z")]
pub struct ParseTimestampError;

impl Timestamp {
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(millis)
    }

    pub fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn unix_millis(self) -> i64 {
        self.0
    }

    pub fn parse_rfc3339(text: &str) -> Result<Self, ParseTimestampError> {
        let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| ParseTimestampError)?;
        let millis = instant.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis)
            .map(Self)
            .map_err(|_| ParseTimestampError)
    }

    /// The UTC calendar date, `YYYY-MM-DD`.
    pub fn utc_date(self) -> String {
        crate::BudgetPeriod::Day.window(self).key
    }

    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|instant| instant.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let stamp = Timestamp::parse_rfc3339("2026-11-23T10:11:12.345Z").unwrap();
        assert_eq!(stamp.unix_millis(), 1_795_428_672_345);
        assert_eq!(stamp.to_rfc3339(), "2026-11-23T10:11:12.345Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
