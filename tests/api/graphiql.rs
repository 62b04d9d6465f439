//! `/graphiql`: the page and its assets come from the binary, with security
//! headers; nothing points at another host. (tests/browser.rs drives it in
//! a real browser.)
use crate::helpers::spawn_app;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn graphiql_is_served_with_a_self_only_csp_and_anti_framing_headers() {
    let app = spawn_app().await;
    let response = app.get("/graphiql").await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let csp = header(&response, "content-security-policy").to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'));
    assert_eq!(header(&response, "x-frame-options"), "DENY");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "referrer-policy"), "no-referrer");

    let html = response.text().await.expect("body");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));
    assert!(!html.contains("<script>"), "inline script in the page");
    assert!(!html.contains("<style"), "inline style in the page");
}

#[tokio::test]
async fn every_asset_the_page_names_is_served_from_the_binary_with_its_content_type() {
    let app = spawn_app().await;
    let html = app.get("/graphiql").await.text().await.expect("body");
    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("/graphiql/assets/"))
        .collect();
    assert_eq!(assets.len(), 6, "{assets:?}");
    for path in assets {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(
            header(&response, "content-type").starts_with(expected),
            "{path}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(header(&response, "cache-control").contains("max-age"));
        let body = response.bytes().await.expect("body");
        assert!(!body.is_empty(), "{path}");
    }
    assert_eq!(app.get("/graphiql/assets/nope.js").await.status(), 404);
    assert_eq!(
        app.get("/graphiql/assets/..%2Fsrc%2Fmain.rs")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn the_graphiql_header_pane_is_prefilled_with_a_placeholder_and_no_token() {
    let app = spawn_app().await;
    let script = app
        .get("/graphiql/assets/bootstrap.js")
        .await
        .text()
        .await
        .expect("body");
    assert!(script.contains("'<paste a token>'"));
    assert!(!script.contains("eyJ"), "a JWT in the bootstrap script");
    assert!(script.contains("shouldPersistHeaders: false"));
}
