//! Hand-written SVG charts for the summary page: horizontal bars, a histogram with marker
//! lines, and columns over time.
//!
//! Each chart is a string of inline SVG with a fixed viewBox that the page scales to its
//! width. All text goes through [`escape`]: error codes come from a server.

use std::fmt::Write as _;

/// Width of every chart's viewBox.
pub const WIDTH: f64 = 760.0;

const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const BOTTOM: f64 = 40.0;
const BAR_HEIGHT: f64 = 22.0;
const BAR_GAP: f64 = 8.0;
const MARKER_ROW: f64 = 16.0;
const HEIGHT: f64 = 260.0;
/// Characters of a bar label shown before it is cut short.
const LABEL_CHARS: usize = 30;

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where a text sits relative to its point.
#[derive(Debug, Clone, Copy)]
pub enum Anchor {
    /// The text starts at the point.
    Start,
    /// The text is centred on the point.
    Middle,
    /// The text ends at the point.
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// An SVG document under construction.
pub struct Svg {
    height: f64,
    label: String,
    body: String,
}

impl Svg {
    /// An empty chart of the page's width and `height`, described by `label` for screen
    /// readers.
    pub fn new(height: f64, label: &str) -> Svg {
        Svg {
            height,
            label: escape(label),
            body: String::new(),
        }
    }

    /// A rectangle with a tooltip.
    pub fn rect(&mut self, (x, y, w, h): (f64, f64, f64, f64), class: &str, tip: &str) {
        let _ = write!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" class="{class}"><title>{}</title></rect>"#,
            escape(tip)
        );
    }

    /// A line from `(x1, y1)` to `(x2, y2)`.
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &str) {
        let _ = write!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" class="{class}"/>"#
        );
    }

    /// A text at `(x, y)`, its baseline at `y`.
    pub fn text(&mut self, (x, y): (f64, f64), anchor: Anchor, class: &str, text: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{}" class="{class}">{}</text>"#,
            anchor.as_str(),
            escape(text)
        );
    }

    /// The finished `<svg>` element.
    pub fn finish(self) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h}" role="img" aria-label="{label}">{body}</svg>"#,
            h = self.height,
            label = self.label,
            body = self.body
        )
    }
}

/// A linear map from values to positions.
#[derive(Debug, Clone, Copy)]
struct Scale {
    from: (f64, f64),
    to: (f64, f64),
}

impl Scale {
    fn at(self, value: f64) -> f64 {
        let span = self.from.1 - self.from.0;
        let share = if span == 0.0 {
            0.0
        } else {
            (value - self.from.0) / span
        };
        self.to.0 + share * (self.to.1 - self.to.0)
    }
}

/// The top of a count axis and its tick step: 1, 2 or 5 times a power of ten, at most
/// five steps, the top at or above `max`.
pub fn nice_axis(max: u64) -> (u64, u64) {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if max.div_ceil(step * factor) <= 5 {
                let step = step * factor;
                return (max.div_ceil(step).max(1) * step, step);
            }
        }
        step *= 10;
    }
}

/// One bar of a bar chart.
pub struct Bar<'a> {
    /// What the bar counts.
    pub label: &'a str,
    /// Its count.
    pub value: u64,
    /// Its CSS class, for the colour.
    pub class: &'a str,
}

/// Horizontal bars, one per item, with the label on the left and the count at the end.
pub fn horizontal_bars(bars: &[Bar], caption: &str) -> String {
    let label_width = 240.0;
    let height = bars.len() as f64 * (BAR_HEIGHT + BAR_GAP) + BAR_GAP;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    // Room on the right for the largest count's digits.
    let x = Scale {
        from: (0.0, max as f64),
        to: (label_width, WIDTH - 80.0),
    };
    let mut svg = Svg::new(height, caption);

    for (i, bar) in bars.iter().enumerate() {
        let top = BAR_GAP + i as f64 * (BAR_HEIGHT + BAR_GAP);
        let middle = top + BAR_HEIGHT / 2.0 + 4.0;
        let width = (x.at(bar.value as f64) - label_width).max(0.0);
        svg.text(
            (label_width - 8.0, middle),
            Anchor::End,
            "label",
            &shorten(bar.label),
        );
        let tip = format!("{}: {}", bar.label, bar.value);
        svg.rect((label_width, top, width, BAR_HEIGHT), bar.class, &tip);
        let end = label_width + width + 6.0;
        svg.text(
            (end, middle),
            Anchor::Start,
            "value",
            &bar.value.to_string(),
        );
    }
    svg.finish()
}

/// `label` cut to [`LABEL_CHARS`] by an ellipsis in the middle: codes that share a long
/// prefix differ at their end, so both ends stay.
fn shorten(label: &str) -> String {
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= LABEL_CHARS {
        return label.to_string();
    }
    let head = (LABEL_CHARS - 1) / 2;
    let tail = LABEL_CHARS - 1 - head;
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{head}…{tail}")
}

/// A vertical line across a histogram, labelled above the plot.
pub struct Marker {
    /// Where on the value axis.
    pub at: f64,
    /// Its label.
    pub label: String,
}

/// One bar of a histogram over a value range.
pub struct Bin {
    /// The value range's start.
    pub from: f64,
    /// Its end.
    pub to: f64,
    /// Rows in it.
    pub rows: u64,
}

/// A histogram over `range`, with `markers` as labelled dashed lines.
///
/// The markers' labels stand on rows of their own above the plot, the first marker's on
/// the top row, each ending at its line; a line starts at its own label's row. Markers
/// given from the right (highest value) first thus never cross another's label, however
/// close they are.
pub fn histogram(bins: &[Bin], range: (f64, f64), markers: &[Marker], caption: &str) -> String {
    let top = 24.0 + markers.len() as f64 * MARKER_ROW;
    let bottom = HEIGHT - BOTTOM;
    let x = Scale {
        from: range,
        to: (LEFT, WIDTH - RIGHT),
    };
    let (y_top, step) = nice_axis(bins.iter().map(|b| b.rows).max().unwrap_or(0));
    let y = Scale {
        from: (0.0, y_top as f64),
        to: (bottom, top),
    };
    let mut svg = Svg::new(HEIGHT, caption);

    count_axis(&mut svg, y, (y_top, step), (top, bottom));
    for bin in bins {
        let (left, right) = (x.at(bin.from) + 1.0, x.at(bin.to) - 1.0);
        let tip = format!("{} to {}: {} rows", bin.from, bin.to, bin.rows);
        let height = bottom - y.at(bin.rows as f64);
        svg.rect((left, bottom - height, right - left, height), "bar", &tip);
        svg.text(
            (x.at(bin.from), bottom + 16.0),
            Anchor::Middle,
            "tick",
            &bin.from.to_string(),
        );
    }
    if let Some(last) = bins.last() {
        svg.text(
            (x.at(last.to), bottom + 16.0),
            Anchor::Middle,
            "tick",
            &last.to.to_string(),
        );
    }
    for (row, marker) in markers.iter().enumerate() {
        let label_y = 12.0 + row as f64 * MARKER_ROW + 10.0;
        let at = x.at(marker.at);
        svg.line((at, label_y - 10.0), (at, bottom), "marker");
        svg.text(
            (at - 4.0, label_y),
            Anchor::End,
            "marker-label",
            &marker.label,
        );
    }
    svg.finish()
}

/// The count axis on the left: ticks, their numbers and light grid lines.
fn count_axis(svg: &mut Svg, y: Scale, (y_top, step): (u64, u64), (top, bottom): (f64, f64)) {
    let mut tick = 0;
    while tick <= y_top {
        let at = y.at(tick as f64);
        svg.line((LEFT, at), (WIDTH - RIGHT, at), "grid");
        svg.text(
            (LEFT - 6.0, at + 4.0),
            Anchor::End,
            "tick",
            &tick.to_string(),
        );
        tick += step;
    }
    svg.line((LEFT, top), (LEFT, bottom), "axis");
    svg.line((LEFT, bottom), (WIDTH - RIGHT, bottom), "axis");
    svg.text((LEFT - 6.0, top - 10.0), Anchor::End, "tick", "rows");
}

/// One column of a chart over time.
pub struct Column<'a> {
    /// The tick label, should this column get one.
    pub tick: &'a str,
    /// Its tooltip.
    pub tip: &'a str,
    /// Rows in it.
    pub rows: u64,
}

/// Columns over time, one per bucket, with about six tick labels under them.
pub fn columns(columns: &[Column], caption: &str) -> String {
    let (top, bottom) = (24.0, HEIGHT - BOTTOM);
    let count = columns.len().max(1);
    let slot = (WIDTH - RIGHT - LEFT) / count as f64;
    let (y_top, step) = nice_axis(columns.iter().map(|c| c.rows).max().unwrap_or(0));
    let y = Scale {
        from: (0.0, y_top as f64),
        to: (bottom, top),
    };
    let every = count.div_ceil(6);
    let mut svg = Svg::new(HEIGHT, caption);

    count_axis(&mut svg, y, (y_top, step), (top, bottom));
    for (i, column) in columns.iter().enumerate() {
        let left = LEFT + i as f64 * slot;
        let height = bottom - y.at(column.rows as f64);
        let gap = if slot > 4.0 { 1.0 } else { 0.0 };
        svg.rect(
            (left + gap, bottom - height, slot - 2.0 * gap, height),
            "bar",
            column.tip,
        );
        if i % every == 0 {
            svg.line((left, bottom), (left, bottom + 4.0), "axis");
            svg.text((left, bottom + 18.0), Anchor::Middle, "tick", column.tick);
        }
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn count_axes_end_on_a_round_number() {
        assert_eq!(nice_axis(0), (1, 1));
        assert_eq!(nice_axis(4), (4, 1));
        assert_eq!(nice_axis(7), (8, 2));
        assert_eq!(nice_axis(23), (25, 5));
        assert_eq!(nice_axis(240), (250, 50));
        assert_eq!(nice_axis(1_001), (1_500, 500));
    }

    #[test]
    fn long_labels_are_cut_short() {
        let label = format!("Error.{}.Code12", "Very.Long".repeat(5));
        let short = shorten(&label);
        assert_eq!(short.chars().count(), LABEL_CHARS);
        assert_eq!(short, "Error.Very.Lon…ery.Long.Code12");
        assert_eq!(shorten("Throttling"), "Throttling");
    }

    #[test]
    fn bars_have_widths_in_proportion() {
        let svg = horizontal_bars(
            &[
                Bar {
                    label: "a",
                    value: 10,
                    class: "bar",
                },
                Bar {
                    label: "b",
                    value: 5,
                    class: "bar",
                },
            ],
            "test",
        );
        // The largest bar runs from 240 to 680: 440 wide; half of it for half the count.
        assert!(svg.contains(r#"width="440.0""#), "{svg}");
        assert!(svg.contains(r#"width="220.0""#), "{svg}");
    }
}
