//! `static/` embedded in the binary and served with validators.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// Appended to asset URLs (`?v=`) so a new release is fetched at once even
/// though assets are cached.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[get("/static/{path:.*}")]
pub async fn asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(file) = Static::get(&path) else {
        return super::fallback::not_found_page(&req);
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"));
    if fresh {
        return res.finish();
    }
    let mime = mime_guess::from_path(path.as_str()).first_or_octet_stream();
    res.content_type(mime.as_ref()).body(file.data.into_owned())
}
