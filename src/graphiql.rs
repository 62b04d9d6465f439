//! GraphiQL, served whole from files embedded at build time
//! (`assets/graphiql/`: ours, and the third-party builds under `vendor/`,
//! see its README): no request leaves this server.
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

/// Only this origin: no inline script, no other host. Styles: 'self' only
/// (GraphiQL's JavaScript sets element styles through the CSSOM, which the
/// policy does not restrict); fonts are `data:` URLs inside the stylesheet.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static INDEX: &[u8] = include_bytes!("../assets/graphiql/index.html");

/// An embedded file of `assets/graphiql/` (`$dir` is `""` or `"vendor/"`),
/// served under its own name.
macro_rules! asset {
    ($dir:literal, $name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/graphiql/", $dir, $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("vendor/", "graphiql.min.js", JS),
    asset!("vendor/", "graphiql.min.css", CSS),
    asset!("vendor/", "react.production.min.js", JS),
    asset!("vendor/", "react-dom.production.min.js", JS),
    asset!("", "bootstrap.js", JS),
    asset!("", "page.css", CSS),
];

/// Register `/graphiql` and `/graphiql/assets/{name}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphiql", web::get().to(page))
        .route("/graphiql/assets/{name}", web::get().to(asset));
}

fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    builder
}

async fn page() -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == name.as_str()) {
        Some(asset) => secured(HttpResponse::Ok())
            .content_type(asset.content_type)
            // The vendored files change only with the binary.
            .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
            .body(asset.body),
        None => secured(HttpResponse::NotFound())
            .content_type("text/plain; charset=utf-8")
            .body("no such asset"),
    }
}
