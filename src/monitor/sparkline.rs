//! Tiny response-time charts for the dashboard, drawn as SVG polylines on
//! the server (no chart library, nothing fetched by the browser).

/// Width and height of the drawing, in SVG user units.
pub const WIDTH: f64 = 120.0;
pub const HEIGHT: f64 = 28.0;

/// `points` for an SVG polyline of `values` (oldest first), scaled to the
/// largest; empty when there is nothing to draw.
pub fn points(values: &[f64]) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max).max(1.0);
    let step = WIDTH / (values.len() - 1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = i as f64 * step;
            let y = HEIGHT - 2.0 - (v / max) * (HEIGHT - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn scales_to_the_largest() {
        assert_eq!(super::points(&[5.0]), "");
        assert_eq!(super::points(&[0.0, 10.0]), "0.0,26.0 120.0,2.0");
    }
}
