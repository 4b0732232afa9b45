//! Finding where the API's rows and ours differ without listing them all: compare the count the
//! API gives for a span of an immutable time (a conversation's creation, a rating's) with the
//! rows held in the same span, and descend only into spans whose counts differ.
//!
//! Each level halves a span at the median of the rows held in it and asks for the left half's
//! count; the right half's is the parent's less the left's. A difference among N held rows is
//! so narrowed to a span of at most `leaf` rows in about log2(N / leaf) requests, which the
//! caller then reads whole. Counts may move between two requests (a row created meanwhile):
//! that only sends the search down a span that turns out to hold no difference, or leaves a
//! difference for the next run; callers confirm before removing anything.

use std::future::Future;

use futures::StreamExt;

/// A span of seconds since the epoch, `[from, to)`; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Span {
    pub const ALL: Span = Span { from: None, to: None };

    /// The held keys (sorted) that fall inside the span.
    fn slice<'k>(&self, keys: &'k [i64]) -> &'k [i64] {
        let lo = self.from.map_or(0, |f| keys.partition_point(|k| *k < f));
        let hi = self.to.map_or(keys.len(), |t| keys.partition_point(|k| *k < t));
        &keys[lo..hi.max(lo)]
    }

    pub fn contains(&self, key: i64) -> bool {
        self.from.is_none_or(|f| key >= f) && self.to.is_none_or(|t| key < t)
    }
}

/// Which differences are followed down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Only spans where the API counts fewer rows than are held (something was removed).
    /// Rows the API has and we do not yet are new ones, which the next listing brings.
    Fewer,
    /// Any difference (rows removed, moved or added in spans no listing reads again).
    Any,
}

impl Follow {
    fn differs(self, live: u64, held: usize) -> bool {
        match self {
            Follow::Fewer => live < held as u64,
            Follow::Any => live != held as u64,
        }
    }
}

/// What a census found and what it cost.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Spans whose counts differ and hold at most `leaf` rows (or cannot be split further).
    pub spans: Vec<Span>,
    /// Count requests made (the root's is the caller's).
    pub requests: u64,
}

/// Narrows the difference between the `root_live` rows the API counts in `root` and the held
/// `keys` (sorted seconds) down to spans of at most `leaf` held rows. `count` asks the API how
/// many rows a span holds; up to `concurrency` are asked at once.
pub(crate) async fn narrow<F, Fut, E>(keys: &[i64], root: Span, root_live: u64, leaf: usize, follow: Follow, concurrency: usize, count: F) -> Result<Findings, E>
where
    F: Fn(Span) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
{
    let mut found = Findings::default();
    let mut frontier = vec![(root, root_live)];
    while !frontier.is_empty() {
        // Spans to split this level: (left, right, the parent's live count).
        let mut splits = Vec::new();
        for (span, live) in frontier {
            let held = span.slice(keys);
            let wanted = follow.differs(live, held.len()) && (follow == Follow::Any || !held.is_empty());
            if !wanted {
                continue;
            }
            match split_point(held).filter(|_| held.len() > leaf) {
                Some(mid) => splits.push((Span { from: span.from, to: Some(mid) }, Span { from: Some(mid), to: span.to }, live)),
                None => found.spans.push(span),
            }
        }
        let counted: Vec<Result<(Span, Span, u64, u64), E>> = futures::stream::iter(splits.into_iter().map(|(left, right, live)| {
            let asked = count(left);
            async move { asked.await.map(|l| (left, right, live, l)) }
        }))
        .buffered(concurrency.max(1))
        .collect()
        .await;
        frontier = Vec::new();
        for c in counted {
            let (left, right, live, l) = c?;
            found.requests += 1;
            frontier.push((left, l));
            frontier.push((right, live.saturating_sub(l)));
        }
    }
    found.spans.sort_by_key(|s| s.from);
    Ok(found)
}

/// Where to halve a span holding `held` (sorted): its median key, or the next larger one when
/// the median equals the first (a span of one repeated second cannot be split).
fn split_point(held: &[i64]) -> Option<i64> {
    let first = *held.first()?;
    let mid = held[held.len() / 2];
    if mid > first {
        return Some(mid);
    }
    held.iter().copied().find(|k| *k > first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Counts over an in-memory "API" of `live` keys, counting the requests.
    async fn census(held: &[i64], live: &[i64], leaf: usize, follow: Follow) -> (Findings, u64) {
        let asked = Cell::new(0u64);
        let count = |span: Span| {
            asked.set(asked.get() + 1);
            let n = live.iter().filter(|k| span.contains(**k)).count() as u64;
            async move { Ok::<u64, ()>(n) }
        };
        let found = narrow(held, Span::ALL, live.len() as u64, leaf, follow, 4, count).await.unwrap();
        (found, asked.get())
    }

    #[tokio::test]
    async fn every_removed_key_lands_in_a_small_span_in_logarithmic_requests() {
        let held: Vec<i64> = (0..100_000).map(|i| i * 3).collect();
        let removed = [7 * 3, 50_000 * 3, 50_001 * 3, 99_999 * 3];
        let live: Vec<i64> = held.iter().copied().filter(|k| !removed.contains(k)).collect();
        let (found, asked) = census(&held, &live, 25, Follow::Fewer).await;
        assert_eq!(found.requests, asked);
        for k in removed {
            let span = found.spans.iter().find(|s| s.contains(k)).unwrap_or_else(|| panic!("{k} not found"));
            assert!(span.slice(&held).len() <= 25, "{span:?}");
        }
        // log2(100,000 / 25) = 12 levels; 4 removals, two of them side by side.
        let depth = (held.len() as f64 / 25.0).log2().ceil() as u64 + 1;
        assert!(asked <= removed.len() as u64 * depth, "{asked} requests");
        assert!(found.spans.len() <= removed.len());
    }

    #[tokio::test]
    async fn equal_counts_cost_nothing_and_new_rows_alone_are_not_followed() {
        let held: Vec<i64> = (0..10_000).collect();
        assert_eq!(census(&held, &held, 25, Follow::Fewer).await, (Findings::default(), 0));
        let mut live = held.clone();
        live.extend([20_000, 20_001]);
        assert_eq!(census(&held, &live, 25, Follow::Fewer).await.1, 0, "rows the API has and we do not are not removals");
        let (found, _) = census(&held, &live, 25, Follow::Any).await;
        assert!(found.spans.iter().any(|s| s.contains(20_000)), "followed when any difference counts");
    }

    #[tokio::test]
    async fn with_any_difference_followed_rows_added_and_removed_in_different_halves_are_both_found() {
        let held: Vec<i64> = (0..5_000).map(|i| i * 10).collect();
        let mut live: Vec<i64> = held.iter().copied().filter(|k| ![40_000, 41_000].contains(k)).collect();
        live.push(5);
        let (found, _) = census(&held, &live, 50, Follow::Any).await;
        for k in [5, 40_000, 41_000] {
            assert!(found.spans.iter().any(|s| s.contains(k)), "{k}: {:?}", found.spans);
        }
        // A row that moves within the counted range leaves every count as it was: counts cannot
        // see it, which is why callers read the spans that can change (the latest) every run.
        let mut moved = held.clone();
        moved[4_000] = 5;
        moved.sort_unstable();
        assert!(census(&held, &moved, 50, Follow::Any).await.0.spans.is_empty());
    }

    #[tokio::test]
    async fn a_span_of_one_repeated_second_is_a_leaf_whatever_its_size() {
        let held = vec![5; 400];
        let live = vec![5; 399];
        let (found, asked) = census(&held, &live, 25, Follow::Fewer).await;
        assert_eq!((found.spans, asked), (vec![Span::ALL], 0));
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(&[1, 2, 3, 4]), Some(3));
        assert_eq!(split_point(&[1, 1, 1, 2]), Some(2));
        assert_eq!(split_point(&[1, 1, 1]), None);
        assert_eq!(split_point(&[]), None);
        assert_eq!(Span { from: Some(2), to: Some(4) }.slice(&[1, 2, 3, 4, 5]), &[2, 3]);
    }
}
