//! `HEAD` for every `GET` route: link-preview bots and uptime monitors ask with it, and
//! actix-web's method guards would answer 404.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Routes a `HEAD` request as the `GET` of the same address, in one place for every route.
/// The HTTP layer decided when it read the request that its answer has no body: it sends the
/// `GET`'s status and headers, its `Content-Length` included, and drops the body.
pub async fn as_get(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    next.call(request).await
}
