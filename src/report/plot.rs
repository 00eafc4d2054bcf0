//! PNG plots for reports: annotated heat-maps (side-by-side panels on one colour scale) and line
//! plots. Drawn with plotters into an RGB buffer and encoded with the `png` crate, so the bytes
//! can be written atomically by the caller.
//!
//! Text uses DejaVu Sans, bundled in assets/fonts (licence alongside) and compiled into the
//! binary: no system fonts are looked up at run time, so plots render the same on every machine.

use crate::{Error, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::OnceLock;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Msg(format!("plot: {e}"))
}

/// Register the bundled font with plotters once per process.
fn font_ready() -> Result<()> {
    static READY: OnceLock<bool> = OnceLock::new();
    let ok = *READY.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(plot_err("the bundled font assets/fonts/DejaVuSans.ttf could not be parsed"))
    }
}

/// Render with `draw` onto a white (w, h) canvas and return the PNG bytes.
fn render<F>(w: u32, h: u32, draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> std::result::Result<(), String>,
{
    font_ready()?;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root).map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    let mut png_bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut png_bytes, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best); // plots are written once and committed
    enc.set_filter(png::FilterType::Paeth);
    let mut writer = enc.write_header().map_err(plot_err)?;
    writer.write_image_data(&rgb).map_err(plot_err)?;
    writer.finish().map_err(plot_err)?;
    Ok(png_bytes)
}

/// One heat-map panel: `values` is (rows, cols) row-major; None draws a grey "n/a" cell.
#[derive(Clone, Debug)]
pub struct Heatmap {
    pub title: String,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
    pub values: Vec<Option<f64>>,
}

/// A perceptually ordered ramp (dark blue -> teal -> yellow), t in [0, 1].
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] =
        [(48.0, 18.0, 90.0), (45.0, 90.0, 140.0), (35.0, 145.0, 140.0), (95.0, 200.0, 95.0), (250.0, 230.0, 40.0)];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix = |a: f64, b: f64| (a + f * (b - a)).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Side-by-side heat-map panels sharing one logarithmic colour scale; each cell shows its value.
/// `x_label` names the columns, `y_label` the rows.
pub fn heatmaps_png(title: &str, panels: &[Heatmap], x_label: &str, y_label: &str) -> Result<Vec<u8>> {
    for p in panels {
        if p.values.len() != p.row_labels.len() * p.col_labels.len() {
            return Err(plot_err(format!("heat-map '{}': {} values for {} x {} cells", p.title, p.values.len(), p.row_labels.len(), p.col_labels.len())));
        }
    }
    let finite: Vec<f64> = panels.iter().flat_map(|p| p.values.iter().flatten()).copied().filter(|v| v.is_finite() && *v > 0.0).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if finite.is_empty() { (1.0, 10.0) } else { (lo, hi.max(lo * 1.0001)) };
    let colour = |v: f64| ramp(((v.max(lo)).ln() - lo.ln()) / (hi.ln() - lo.ln()));
    // Room for the longest row label (13 px font, ~7.5 px a character) and column label (11 px, ~6.5).
    let longest = |labels: &mut dyn Iterator<Item = &String>| labels.map(|l| l.chars().count()).max().unwrap_or(0) as i32;
    let left = 90i32.max(16 + longest(&mut panels.iter().flat_map(|p| &p.row_labels)) * 15 / 2);
    let cell_w = 52i32.max(16 + longest(&mut panels.iter().flat_map(|p| &p.col_labels)) * 13 / 2);
    let (cell_h, top, gap) = (30i32, 60i32, 40i32);
    let max_cols = panels.iter().map(|p| p.col_labels.len()).max().unwrap_or(1) as i32;
    let max_rows = panels.iter().map(|p| p.row_labels.len()).max().unwrap_or(1) as i32;
    let w = (left + panels.len() as i32 * (max_cols * cell_w + gap) + 20) as u32;
    let h = (top + max_rows * cell_h + 70) as u32;
    render(w, h, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let big = (FAMILY, 18).into_font();
        let small = (FAMILY, 13).into_font();
        let tiny = (FAMILY, 11).into_font();
        root.draw(&Text::new(title.to_string(), (left, 8), big.clone())).map_err(e)?;
        for (pi, p) in panels.iter().enumerate() {
            let x0 = left + pi as i32 * (max_cols * cell_w + gap);
            root.draw(&Text::new(p.title.clone(), (x0, 34), small.clone())).map_err(e)?;
            for (r, rl) in p.row_labels.iter().enumerate() {
                let y = top + r as i32 * cell_h;
                if pi == 0 {
                    root.draw(&Text::new(rl.clone(), (8, y + cell_h / 2 - 7), small.clone())).map_err(e)?;
                }
                for c in 0..p.col_labels.len() {
                    let x = x0 + c as i32 * cell_w;
                    let v = p.values[r * p.col_labels.len() + c];
                    let fill = match v {
                        Some(v) if v.is_finite() => colour(v),
                        _ => RGBColor(200, 200, 200),
                    };
                    root.draw(&Rectangle::new([(x, y), (x + cell_w - 1, y + cell_h - 1)], fill.filled())).map_err(e)?;
                    let text = match v {
                        Some(v) if v.is_finite() => format_value(v),
                        _ => "n/a".to_string(),
                    };
                    let luminance = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64;
                    let ink = if luminance > 140.0 { BLACK } else { WHITE };
                    root.draw(&Text::new(text, (x + 6, y + cell_h / 2 - 6), tiny.clone().color(&ink))).map_err(e)?;
                }
            }
            let yl = top + p.row_labels.len() as i32 * cell_h + 6;
            for (c, cl) in p.col_labels.iter().enumerate() {
                root.draw(&Text::new(cl.clone(), (x0 + c as i32 * cell_w + 8, yl), tiny.clone())).map_err(e)?;
            }
            root.draw(&Text::new(x_label.to_string(), (x0, yl + 20), small.clone())).map_err(e)?;
        }
        root.draw(&Text::new(format!("rows: {y_label}; colour: log scale {} .. {}", format_value(lo), format_value(hi)), (8, h as i32 - 22), tiny.clone()))
            .map_err(e)?;
        Ok(())
    })
}

/// Two or three significant digits, the way the reference tables print them.
pub fn format_value(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One line of a line plot: (x, y) points in order.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [RGBColor; 6] =
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(23, 190, 207)];

/// A captioned chart on `root` with f64 axes over `x` and `y` and `y_area` pixels for y labels:
/// the frame the line plot and the bar chart share.
fn xy_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>, title: &str, x: std::ops::Range<f64>, y: std::ops::Range<f64>, y_area: u32,
) -> std::result::Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>, String> {
    ChartBuilder::on(root)
        .caption(title, (FAMILY, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())
}

/// Lines with markers and a legend, on linear axes fitted to the data (pass log10 values for a
/// log axis and say so in the label). Non-finite points are skipped.
pub fn line_plot_png(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Vec<u8>> {
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter()).copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    if pts.is_empty() {
        return Err(plot_err(format!("line plot '{title}': no finite points")));
    }
    let span = |lo: f64, hi: f64| if hi > lo { (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)) } else { (lo - 1.0, hi + 1.0) };
    let (x0, x1) = span(pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min), pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max));
    let (y0, y1) = span(pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min), pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max));
    render(720, 460, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = xy_chart(root, title, x0..x1, y0..y1, 56)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .draw()
            .map_err(e)?;
        for (i, s) in series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let line: Vec<(f64, f64)> = s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(e)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        Ok(())
    })
}

/// One horizontal bar of [`bar_chart_png`]: `value` drawn from 0, `target` marked on it.
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub target: Option<f64>,
}

/// Horizontal bars, one a row from the top, each labelled inside the plot; a bar's target is a
/// black tick across it, and the bar is green where it reaches its target, red where it does not
/// (blue without a target). Non-finite values draw as empty bars.
pub fn bar_chart_png(title: &str, x_label: &str, bars: &[Bar]) -> Result<Vec<u8>> {
    if bars.is_empty() {
        return Err(plot_err(format!("bar chart '{title}': no bars")));
    }
    let n = bars.len();
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let top = bars.iter().map(|b| finite(b.value).max(b.target.map_or(0.0, finite))).fold(1.0f64, f64::max) * 1.08;
    render(900, 90 + 18 * n as u32, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = xy_chart(root, title, 0f64..top, 0f64..n as f64, 8)?;
        chart.configure_mesh().disable_y_mesh().x_max_light_lines(1).y_labels(0).x_desc(x_label).label_style((FAMILY, 12)).axis_desc_style((FAMILY, 13)).draw().map_err(e)?;
        for (i, b) in bars.iter().enumerate() {
            let y = (n - i) as f64; // the first bar on top
            let colour = match b.target {
                Some(t) if b.value >= t => PALETTE[2],
                Some(_) => PALETTE[1],
                None => PALETTE[0],
            };
            chart.draw_series([Rectangle::new([(0.0, y - 0.85), (finite(b.value), y - 0.15)], colour.mix(0.45).filled())]).map_err(e)?;
            if let Some(t) = b.target.filter(|t| t.is_finite()) {
                chart.draw_series([PathElement::new(vec![(t, y - 0.95), (t, y - 0.05)], BLACK.stroke_width(2))]).map_err(e)?;
            }
            let text = format!("{}  {}", b.label, format_value(b.value));
            let style = TextStyle::from((FAMILY, 11).into_font()).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ));
            chart.draw_series([Text::new(text, (top * 0.005, y - 0.5), style)]).map_err(e)?;
        }
        Ok(())
    })
}
