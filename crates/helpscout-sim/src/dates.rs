//! Timestamps of the simulated account: whole seconds since the Unix epoch, formatted the
//! way the API formats them, and the strict parser the API applies to date parameters.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// Seconds since the Unix epoch (UTC). Every stored timestamp has second precision.
pub type Ts = i64;

/// `YYYY-MM-DDTHH:MM:SSZ`, the API's date format.
pub fn fmt_ts(ts: Ts) -> String {
    to_datetime(ts).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn to_datetime(ts: Ts) -> DateTime<Utc> {
    Utc.timestamp_opt(ts, 0).single().unwrap_or_default()
}

/// An HTTP `Date` header value (RFC 7231 IMF-fixdate).
pub fn http_date(ts: Ts) -> String {
    to_datetime(ts)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// The `customerWaitingSince.friendly` text. The live API renders a relative phrase; the
/// simulator renders a stable absolute one ("Jun 1") so that served rows and the ground truth
/// agree whenever they are read.
pub fn friendly(ts: Ts) -> String {
    to_datetime(ts).format("%b %-d").to_string()
}

/// A calendar date `YYYY-MM-DD` (custom field values of type date).
pub fn fmt_day(ts: Ts) -> String {
    to_datetime(ts).format("%Y-%m-%d").to_string()
}

/// Parses a date parameter. Exactly `YYYY-MM-DDTHH:MM:SSZ` is accepted; anything else is a
/// "Malformed date" for the API.
pub fn parse_api_date(s: &str) -> Option<Ts> {
    let b = s.as_bytes();
    if b.len() != 20 {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return None;
        }
    }
    NaiveDateTime::parse_from_str(&s[..19], "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let ts = parse_api_date("2024-06-03T12:00:00Z").unwrap();
        assert_eq!(fmt_ts(ts), "2024-06-03T12:00:00Z");
        assert_eq!(http_date(ts), "Mon, 03 Jun 2024 12:00:00 GMT");
        assert_eq!(friendly(ts), "Jun 3");
        assert_eq!(fmt_day(ts), "2024-06-03");
    }

    #[test]
    fn rejects_other_formats() {
        for bad in [
            "2024-06-03",
            "2024-06-03T12:00:00",
            "2024-06-03T12:00:00.000Z",
            "2024-06-03T12:00:00+00:00",
            "2024-06-03 12:00:00Z",
            "2024-13-03T12:00:00Z",
            "2024-02-30T12:00:00Z",
            "yesterday",
            "",
            "+024-06-03T12:00:00Z",
        ] {
            assert_eq!(parse_api_date(bad), None, "{bad}");
        }
    }
}
