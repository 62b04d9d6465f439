//! Every error leaves with an `extensions.code`, decided here and only here.
//! [`AppError`]s keep their variant's code (and `field` for bad input);
//! errors from GraphQL itself (syntax, validation, limits) are
//! `GRAPHQL_VALIDATION_FAILED` before execution and `BAD_USER_INPUT` during
//! it (argument coercion). Internal errors carry no detail.
use std::sync::Arc;

use async_graphql::Response;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::error::AppError;

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        set_codes(&mut response);
        response
    }

    /// Subscription responses (over WebSocket) get their codes the same way.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                set_codes(&mut response);
                response
            })
            .boxed()
    }
}

fn set_codes(response: &mut Response) {
    for error in &mut response.errors {
        let mut extensions = error.extensions.take().unwrap_or_default();
        // DataLoader errors arrive wrapped in an Arc.
        let app = error
            .source::<AppError>()
            .or_else(|| error.source::<Arc<AppError>>().map(Arc::as_ref));
        match app {
            Some(app) => {
                extensions.set("code", app.code());
                if let Some(field) = app.field() {
                    extensions.set("field", field);
                }
                if let AppError::Internal(detail) = app {
                    tracing::error!(detail = %crate::telemetry::mask_personal(detail), "internal error returned to a client");
                }
                error.message = app.to_string();
            }
            None if extensions.get("code").is_none() => {
                let code = if error.path.is_empty() {
                    "GRAPHQL_VALIDATION_FAILED"
                } else {
                    "BAD_USER_INPUT"
                };
                extensions.set("code", code);
            }
            None => {}
        }
        error.extensions = Some(extensions);
    }
}

/// The JSON body of a request refused before GraphQL runs (401, 413, ...).
pub fn error_body(error: &AppError) -> serde_json::Value {
    serde_json::json!({
        "data": null,
        "errors": [{ "message": error.to_string(), "extensions": { "code": error.code() } }],
    })
}
