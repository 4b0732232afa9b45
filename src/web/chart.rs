//! Charts drawn on the server as SVG: no script, nothing fetched, nothing to execute.

use maud::{Markup, html};

/// One bar: its label (shown under some bars), its value, and whether it is flagged.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub flagged: bool,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 10.0;

fn number(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// A bar chart of `bars` between `min` and `max` (bars grow from zero, down for negatives),
/// with an optional dashed line at `threshold`; `title` names it for screen readers.
pub fn bars(title: &str, bars: &[Bar], min: f64, max: f64, threshold: Option<f64>) -> Markup {
    let (min, max) = (min.min(0.0), if max > min { max } else { min + 1.0 });
    let plot_h = HEIGHT - BOTTOM - TOP;
    let y = |v: f64| TOP + (max - v) / (max - min) * plot_h;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let every = (bars.len() / 8).max(1);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                @for v in [min, (min + max) / 2.0, max] {
                    line.grid x1=(LEFT) x2=(WIDTH) y1=(y(v)) y2=(y(v)) {}
                    text.axis x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" { (number(v)) }
                }
                @if let Some(t) = threshold {
                    line.threshold x1=(LEFT) x2=(WIDTH) y1=(y(t)) y2=(y(t)) {}
                }
                @for (i, b) in bars.iter().enumerate() {
                    @let x = LEFT + i as f64 * slot + slot * 0.15;
                    @let (top, bottom) = if b.value >= 0.0 { (y(b.value), y(0.0)) } else { (y(0.0), y(b.value)) };
                    rect class=(if b.flagged { "bar flagged" } else { "bar" }) x=(x) y=(top) width=(slot * 0.7) height=((bottom - top).max(0.5)) {
                        title { (b.label) ": " (number(b.value)) }
                    }
                    @if i % every == 0 {
                        text.axis x=(x + slot * 0.35) y=(HEIGHT - 8.0) text-anchor="middle" { (b.label) }
                    }
                }
            }
            figcaption { (title) }
        }
    }
}

/// A heat map: one row per label of `rows`, one cell per value, shaded by its share of the
/// largest value; `columns` label every third column.
pub fn heat_map(title: &str, rows: &[(String, Vec<f64>)], columns: &[String]) -> Markup {
    const CELL_W: f64 = 26.0;
    const CELL_H: f64 = 22.0;
    const ROW_LABEL: f64 = 90.0;
    const HEAD: f64 = 18.0;
    let n = columns.len().max(1) as f64;
    let (width, height) = (ROW_LABEL + n * CELL_W, HEAD + rows.len() as f64 * CELL_H);
    let peak = rows.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                @for (j, c) in columns.iter().enumerate() {
                    @if j % 3 == 0 {
                        text.axis x=(ROW_LABEL + j as f64 * CELL_W + CELL_W / 2.0) y=(HEAD - 5.0) text-anchor="middle" { (c) }
                    }
                }
                @for (i, (label, values)) in rows.iter().enumerate() {
                    @let y = HEAD + i as f64 * CELL_H;
                    text.axis x=(ROW_LABEL - 6.0) y=(y + CELL_H * 0.65) text-anchor="end" { (label) }
                    @for (j, v) in values.iter().enumerate() {
                        @let share = if peak > 0.0 { v / peak } else { 0.0 };
                        rect class=(if *v > 0.0 { "heat" } else { "heat zero" }) x=(ROW_LABEL + j as f64 * CELL_W + 1.0) y=(y + 1.0)
                            width=(CELL_W - 2.0) height=(CELL_H - 2.0) fill-opacity=(format!("{:.2}", if *v > 0.0 { 0.12 + 0.88 * share } else { 1.0 })) {
                            title { (label) " " (columns.get(j).map(String::as_str).unwrap_or("")) ": " (number(*v)) }
                        }
                    }
                }
            }
            figcaption { (title) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_text_and_never_markup() {
        let svg = bars("<script>x</script>", &[Bar { label: "<b>9</b>".into(), value: 3.0, flagged: true }], 0.0, 10.0, Some(5.0)).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("bar flagged") && svg.contains("threshold"));
    }

    #[test]
    fn a_heat_map_shades_each_cell_by_its_share_of_the_peak_and_escapes_its_labels() {
        let rows = vec![("<i>Mon</i>".to_string(), vec![0.0, 2.0, 4.0]), ("Tue".to_string(), vec![1.0, 0.0, 0.0])];
        let svg = heat_map("<script>t</script>", &rows, &["00".into(), "01".into(), "02".into()]).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<i>"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"heat\"").count(), 3, "three cells hold something");
        assert_eq!(svg.matches("<rect class=\"heat zero\"").count(), 3);
        // The peak is fully opaque (as the three empty cells' grey), half of it 0.12 + 0.88 / 2,
        // a quarter 0.12 + 0.88 / 4.
        assert_eq!(svg.matches(r#"fill-opacity="1.00""#).count(), 4, "{svg}");
        assert!(svg.contains(r#"fill-opacity="0.56""#) && svg.contains(r#"fill-opacity="0.34""#), "{svg}");
        assert!(svg.contains("&lt;i&gt;Mon&lt;/i&gt; 02: 4"), "each cell says what it holds: {svg}");
    }
}
