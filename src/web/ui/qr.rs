//! QR codes drawn by the server as inline SVG (the TOTP enrolment page's
//! `otpauth://` address): any authenticator app's camera reads them, and
//! the page needs neither an image library nor a script.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::error::{Error, Result};

/// `text` as an SVG element (no XML prolog, so it can sit in a page),
/// described by `label` for screen readers.
pub fn svg(text: &str, label: &str) -> Result<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| Error::internal(format!("QR code: {e}")))?;
    let drawn = code
        .render::<svg::Color>()
        .min_dimensions(220, 220)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    let start = drawn
        .find("<svg")
        .ok_or_else(|| Error::internal("QR code: no svg element"))?;
    let label = askama::filters::escape(label, askama::filters::Html)
        .map(|l| l.to_string())
        .unwrap_or_default();
    Ok(drawn[start..].replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{label}\" class=\"qr\""),
        1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_becomes_an_inline_svg_with_a_label() {
        let s = svg(
            "otpauth://totp/agentry:admin?secret=GEZDGNBVGY3TQOJQ&issuer=agentry",
            "QR code <for> admin",
        )
        .unwrap();
        assert!(
            s.starts_with("<svg role=\"img\" aria-label=\"QR code &#60;for&#62; admin\""),
            "{}",
            &s[..120]
        );
        assert!(s.contains("<path") || s.contains("<rect"), "draws modules");
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(!s.contains("<?xml"));
    }
}
