//! The bundled report queries over the views: happiness, productivity, integration health, API
//! usage.

use super::grid::Grid;
use super::views::VIEWS_TABLE;
use super::{Reader, StoreError, db};

/// How happiness ratings are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HappinessBy {
    Day,
    Week,
    Month,
    Mailbox,
    User,
    Team,
    /// The ratings that came with a comment, newest first.
    Comments,
}

/// How the productivity figures are grouped: company-wide per period, or per mailbox, user or
/// team over everything synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductivityBy {
    Day,
    Week,
    Month,
    Mailbox,
    User,
    Team,
}

impl ProductivityBy {
    pub fn name(self) -> &'static str {
        match self {
            ProductivityBy::Day => "day",
            ProductivityBy::Week => "week",
            ProductivityBy::Month => "month",
            ProductivityBy::Mailbox => "mailbox",
            ProductivityBy::User => "user",
            ProductivityBy::Team => "team",
        }
    }

    fn is_period(self) -> bool {
        matches!(self, ProductivityBy::Day | ProductivityBy::Week | ProductivityBy::Month)
    }
}

/// The figures of `productivity`, in the order reports show them.
const PRODUCTIVITY_FIGURES: &str = "new_conversations, conversations_touched, customers, messages_received, replies_sent, \
     mean_first_response_seconds, median_first_response_seconds, p90_first_response_seconds, resolved, \
     mean_resolution_seconds, median_resolution_seconds, p90_resolution_seconds, mean_replies_to_resolve, \
     resolved_on_first_reply_pct, ratings, happiness_score";

/// How API requests are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageBy {
    Hour,
    Day,
}

fn limit_sql(limit: Option<usize>) -> String {
    limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
}

impl Reader {
    /// Runs a query over a bundled view, saying how to get the view when it is missing.
    fn view_grid(&self, view: &str, sql: &str) -> Result<Grid, StoreError> {
        let present: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' AND view_name = ?",
                [view],
                |r| r.get(0),
            )
            .map_err(db("reading the list of views"))?;
        if present == 0 {
            let note: Option<String> = self
                .conn
                .query_row(
                    &format!("SELECT note FROM {VIEWS_TABLE} WHERE list_contains(string_split(objects, ', '), ?) AND NOT installed LIMIT 1"),
                    [view],
                    |r| r.get(0),
                )
                .ok()
                .flatten();
            let reason = match note {
                Some(note) => format!("{note}. Sync the tables it reads (see `SELECT * FROM {VIEWS_TABLE}`), then run `helpscout-etl views`"),
                None => "run `helpscout-etl views` (or a sync) to install the bundled views".into(),
            };
            return Err(StoreError::ViewMissing { view: view.into(), path: self.path.display().to_string(), reason });
        }
        self.grid(sql, &[], &format!("querying {view}"))
    }

    /// Ratings grouped `by` (periods oldest first, the latest `limit`), and the overall figures.
    pub fn happiness(&self, by: HappinessBy, limit: Option<usize>) -> Result<(Grid, Grid), StoreError> {
        let period = match by {
            HappinessBy::Day => Some("day"),
            HappinessBy::Week => Some("week"),
            HappinessBy::Month => Some("month"),
            _ => None,
        };
        let grid = match (by, period) {
            (_, Some(p)) => {
                let mut grid = self.view_grid(
                    "happiness_by_period",
                    &format!(
                        "SELECT period_start AS {p}, ratings, great, okay, not_good, great_pct, okay_pct, not_good_pct, happiness_score \
                         FROM happiness_by_period WHERE period = '{p}' ORDER BY period_start DESC{}",
                        limit_sql(limit)
                    ),
                )?;
                grid.rows.reverse();
                grid
            }
            (HappinessBy::Mailbox, _) => self.view_grid("happiness_by_mailbox", &format!("SELECT * FROM happiness_by_mailbox{}", limit_sql(limit)))?,
            (HappinessBy::User, _) => self.view_grid("happiness_by_user", &format!("SELECT * FROM happiness_by_user{}", limit_sql(limit)))?,
            (HappinessBy::Team, _) => self.view_grid("happiness_by_team", &format!("SELECT * FROM happiness_by_team{}", limit_sql(limit)))?,
            _ => self.view_grid(
                "happiness_comments",
                &format!(
                    "SELECT rated_at_utc, rating, comments, customer_name, customer_email, user_name, conversation_number, \
                     conversation_subject, mailbox_name, conversation_url FROM happiness_comments{}",
                    limit_sql(limit)
                ),
            )?,
        };
        Ok((grid, self.view_grid("happiness_summary", "SELECT * FROM happiness_summary")?))
    }

    /// Productivity grouped `by`: periods oldest first, the latest `limit`; mailboxes, users and
    /// teams over everything synced, cut after `limit`.
    pub fn productivity(&self, by: ProductivityBy, limit: Option<usize>) -> Result<Grid, StoreError> {
        let name = by.name();
        if by.is_period() {
            let mut grid = self.view_grid(
                "productivity",
                &format!(
                    "SELECT period_start AS {name}, {PRODUCTIVITY_FIGURES} \
                     FROM productivity_grouped(NULL, NULL, periods := ['{name}'], dimensions := ['company']) \
                     ORDER BY period_start DESC{}",
                    limit_sql(limit)
                ),
            )?;
            grid.rows.reverse();
            Ok(grid)
        } else {
            self.view_grid(
                "productivity",
                &format!(
                    "SELECT dimension_id AS {name}_id, dimension_name AS {name}, {PRODUCTIVITY_FIGURES} \
                     FROM productivity_grouped(NULL, NULL, dimensions := ['{name}']) \
                     ORDER BY dimension_name NULLS LAST, dimension_id{}",
                    limit_sql(limit)
                ),
            )
        }
    }

    /// The company's productivity over everything synced (one row).
    pub fn productivity_overall(&self) -> Result<Grid, StoreError> {
        self.view_grid(
            "productivity",
            &format!("SELECT {PRODUCTIVITY_FIGURES} FROM productivity_grouped(NULL, NULL, dimensions := ['company'])"),
        )
    }

    /// New conversations by day of the week × hour (UTC), all 168 cells.
    pub fn busiest_times(&self) -> Result<Grid, StoreError> {
        self.view_grid("busiest_times", "SELECT * FROM busiest_times")
    }

    /// The busiest day of the week (no row without conversations).
    pub fn busiest_day(&self) -> Result<Grid, StoreError> {
        self.view_grid("busiest_day", "SELECT * FROM busiest_day")
    }

    /// Email, chat and phone side by side.
    pub fn channel_metrics(&self) -> Result<Grid, StoreError> {
        self.view_grid("channel_metrics", "SELECT * FROM channel_metrics")
    }

    /// The latest week's conversations per tag, with the change from the week before, the
    /// busiest tags first.
    pub fn tag_trends_latest(&self, limit: Option<usize>) -> Result<Grid, StoreError> {
        self.view_grid(
            "tag_trends",
            &format!(
                "SELECT tag, week_start, conversations, previous_week, change, change_pct, share_pct, share_change_pts FROM tag_trends \
                 WHERE week_start = (SELECT max(week_start) FROM tag_trends) ORDER BY conversations DESC, tag{}",
                limit_sql(limit)
            ),
        )
    }

    /// Success rates per event type over the last 24 and 48 hours, as the view has them.
    pub fn health(&self) -> Result<Grid, StoreError> {
        self.view_grid("integration_health", "SELECT * FROM integration_health")
    }

    /// The same, shaped for reading.
    pub fn health_table(&self) -> Result<Grid, StoreError> {
        self.view_grid(
            "integration_health",
            "SELECT window_hours || ' h' AS \"window\", event_type, events, successes, failures, pending, \
             success_rate_pct AS \"success %\", CASE WHEN below_threshold THEN 'BELOW 95 %' ELSE '' END AS flag, \
             last_failure_utc, last_error FROM integration_health",
        )
    }

    /// Requests per hour or day (oldest first, the latest `limit`), and the totals.
    pub fn api_usage(&self, by: UsageBy, limit: Option<usize>) -> Result<(Grid, Grid), StoreError> {
        let (view, key) = match by {
            UsageBy::Hour => ("api_usage_hourly", "hour"),
            UsageBy::Day => ("api_usage_daily", "day"),
        };
        let mut grid = self.view_grid(view, &format!("SELECT * FROM {view} ORDER BY {key} DESC{}", limit_sql(limit)))?;
        grid.rows.reverse();
        let totals = self.view_grid(
            "api_usage_daily",
            "SELECT sum(requests) AS requests, sum(rate_limited) AS rate_limited, sum(failed) AS failed, \
             min(lowest_remaining) AS lowest_remaining FROM api_usage_daily",
        )?;
        Ok((grid, totals))
    }

    /// Emails that submitted several forms within an hour, or whose repeats were ignored.
    pub fn form_repeat_submitters(&self) -> Result<Grid, StoreError> {
        self.view_grid(
            "form_repeat_submitters",
            "SELECT customer_email, submissions, repeats_ignored, most_within_an_hour, \
             strftime(make_timestamp(epoch_us(first_at)), '%Y-%m-%dT%H:%M:%SZ') AS first_at, \
             strftime(make_timestamp(epoch_us(last_at)), '%Y-%m-%dT%H:%M:%SZ') AS last_at FROM form_repeat_submitters LIMIT 100",
        )
    }

    /// Submission markers that more than one synced conversation carries (must stay empty).
    pub fn form_duplicate_tickets(&self) -> Result<Grid, StoreError> {
        self.view_grid("form_duplicate_tickets", "SELECT marker, tickets, CAST(conversation_ids AS VARCHAR) AS conversation_ids FROM form_duplicate_tickets")
    }
}
