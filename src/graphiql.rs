//! GraphiQL, served whole from files embedded at build time
//! (`assets/graphiql/`, see its README): no request leaves this server.
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

static ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        body: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        body: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        body: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        body: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "bootstrap.js",
        content_type: JS,
        body: include_bytes!("../assets/graphiql/bootstrap.js"),
    },
    Asset {
        name: "page.css",
        content_type: CSS,
        body: include_bytes!("../assets/graphiql/page.css"),
    },
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
