//! The log page's filters as they live in the URL, so that any view can be bookmarked and
//! shared: a date range, event types, status, direction, one search box, and the page.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use url::form_urlencoded;

use crate::store::{Cursor, LogFilter};

/// The date range selector's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Today,
    Last24Hours,
    Last48Hours,
    Last7Days,
    Last30Days,
    All,
    Custom,
}

impl Range {
    pub const ALL: [Range; 7] = [Range::Today, Range::Last24Hours, Range::Last48Hours, Range::Last7Days, Range::Last30Days, Range::All, Range::Custom];

    pub fn key(self) -> &'static str {
        match self {
            Range::Today => "today",
            Range::Last24Hours => "24h",
            Range::Last48Hours => "48h",
            Range::Last7Days => "7d",
            Range::Last30Days => "30d",
            Range::All => "all",
            Range::Custom => "custom",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Today => "Today",
            Range::Last24Hours => "Last 24 hours",
            Range::Last48Hours => "Last 48 hours",
            Range::Last7Days => "Last 7 days",
            Range::Last30Days => "Last 30 days",
            Range::All => "All time",
            Range::Custom => "Custom (From / To)",
        }
    }

    fn parse(s: &str) -> Option<Range> {
        Self::ALL.into_iter().find(|r| r.key() == s)
    }
}

/// The filters of a view, as given in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub range: Range,
    /// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` (a date-time field) or RFC 3339; UTC.
    pub from: Option<String>,
    pub to: Option<String>,
    pub types: Vec<String>,
    pub status: Option<String>,
    pub direction: Option<String>,
    pub table: Option<String>,
    /// A customer email (or part of one), a conversation id or a ticket (conversation) number.
    pub q: Option<String>,
    pub before: Option<Cursor>,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery { range: Range::Last7Days, from: None, to: None, types: vec![], status: None, direction: None, table: None, q: None, before: None }
    }
}

/// A time a user typed: the start of a date, a date-time field's minute, or RFC 3339; UTC.
fn parse_time(value: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, format) {
            return Some(t.and_utc());
        }
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    // "To 3 June" includes the 3rd.
    let day = if end_of_day { day.succ_opt()? } else { day };
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl LogQuery {
    /// The filters of a query string; a value that cannot be read is an error in words.
    pub fn parse(raw: Option<&str>) -> Result<LogQuery, String> {
        let mut q = LogQuery::default();
        let mut range_given = false;
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "range" if !value.is_empty() => {
                    q.range = Range::parse(&value).ok_or_else(|| format!("{value:?} is not a date range"))?;
                    range_given = true;
                }
                "from" => q.from = non_empty(&value),
                "to" => q.to = non_empty(&value),
                "type" => q.types.extend(value.split(',').filter_map(non_empty)),
                "status" => q.status = non_empty(&value),
                "direction" => q.direction = non_empty(&value),
                "table" => q.table = non_empty(&value),
                "q" => q.q = non_empty(&value),
                "before" if !value.is_empty() => q.before = Some(Cursor::parse(&value).ok_or_else(|| format!("{value:?} is not a page of the log"))?),
                _ => {}
            }
        }
        // Dates typed without choosing "Custom" still mean a custom range.
        if !range_given && (q.from.is_some() || q.to.is_some()) {
            q.range = Range::Custom;
        }
        for (name, value) in [("From", &q.from), ("To", &q.to)] {
            if q.range == Range::Custom && value.as_deref().is_some_and(|v| parse_time(v, false).is_none()) {
                return Err(format!("{name} {:?} is not a date: use YYYY-MM-DD or a date and time.", value.as_deref().unwrap_or("")));
            }
        }
        Ok(q)
    }

    /// The store's filter for this view at `now`.
    pub fn filter(&self, now: DateTime<Utc>) -> LogFilter {
        let midnight = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let (from, to) = match self.range {
            Range::Today => (Some(midnight), None),
            Range::Last24Hours => (Some(now - Duration::hours(24)), None),
            Range::Last48Hours => (Some(now - Duration::hours(48)), None),
            Range::Last7Days => (Some(now - Duration::days(7)), None),
            Range::Last30Days => (Some(now - Duration::days(30)), None),
            Range::All => (None, None),
            Range::Custom => (self.from.as_deref().and_then(|v| parse_time(v, false)), self.to.as_deref().and_then(|v| parse_time(v, true))),
        };
        LogFilter {
            from,
            to,
            event_types: self.types.clone(),
            status: self.status.clone(),
            direction: self.direction.clone(),
            table: self.table.clone(),
            search: self.q.clone(),
            before: self.before,
            ..Default::default()
        }
    }

    /// The view as a query string (without its page), for links and forms.
    pub fn to_query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("range", self.range.key());
        if self.range == Range::Custom {
            for (k, v) in [("from", &self.from), ("to", &self.to)] {
                if let Some(v) = v {
                    s.append_pair(k, v);
                }
            }
        }
        for t in &self.types {
            s.append_pair("type", t);
        }
        for (k, v) in [("status", &self.status), ("direction", &self.direction), ("table", &self.table), ("q", &self.q)] {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    /// The same view from another page of it.
    pub fn page(&self, before: Cursor) -> String {
        format!("{}&before={before}", self.to_query())
    }

    /// The same view narrowed or changed by `f`, as a query string.
    pub fn with(&self, f: impl FnOnce(&mut LogQuery)) -> String {
        let mut q = self.clone();
        q.before = None;
        f(&mut q);
        q.to_query()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-03T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_view_survives_the_url_and_means_the_same_filter() {
        let q = LogQuery::parse(Some("range=48h&type=Ticket+Created&type=Error&status=Failed&q=ann%40x.io&before=1717416000000000.42")).unwrap();
        assert_eq!(q.range, Range::Last48Hours);
        assert_eq!(q.types, ["Ticket Created", "Error"]);
        assert_eq!(q.before, Some(Cursor { micros: 1_717_416_000_000_000, event_id: 42 }));
        let again = LogQuery::parse(Some(&q.page(q.before.unwrap()))).unwrap();
        assert_eq!(again, q);
        let f = q.filter(now());
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-06-01T12:00:00+00:00");
        assert_eq!((f.search.as_deref(), f.status.as_deref()), (Some("ann@x.io"), Some("Failed")));
    }

    #[test]
    fn dates_mean_a_custom_range_and_the_to_day_is_included() {
        let q = LogQuery::parse(Some("from=2026-06-01&to=2026-06-02")).unwrap();
        assert_eq!(q.range, Range::Custom);
        let f = q.filter(now());
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-06-01T00:00:00+00:00");
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-06-03T00:00:00+00:00");
        let minute = LogQuery::parse(Some("range=custom&from=2026-06-01T09:30")).unwrap().filter(now());
        assert_eq!(minute.from.unwrap().to_rfc3339(), "2026-06-01T09:30:00+00:00");
        assert!(LogQuery::parse(Some("range=custom&from=yesterday")).is_err());
        assert!(LogQuery::parse(Some("range=decade")).is_err());
        assert!(LogQuery::parse(Some("before=abc")).is_err());
        assert_eq!(LogQuery::parse(Some("range=today")).unwrap().filter(now()).from.unwrap().to_rfc3339(), "2026-06-03T00:00:00+00:00");
        assert_eq!(LogQuery::parse(None).unwrap().range, Range::Last7Days);
    }
}
