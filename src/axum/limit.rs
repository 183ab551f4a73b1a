//! A tower layer over keyward's shared rate limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::body::Body;
use ::axum::extract::ConnectInfo;
use ::axum::http::Request;
use ::axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::{ClientAddr, Rejection};
use crate::Keyward;
use crate::limit::Limit;

/// A function of a request that names what it is counted against.
type KeyFn = Arc<dyn Fn(&Request<Body>) -> Option<String> + Send + Sync>;

/// What a request is counted against: its client address, or a key of
/// the application's choosing.
#[derive(Clone)]
enum KeyOf {
    Client(ClientAddr),
    Function(KeyFn),
}

/// A [`Layer`] that takes one unit of a [`Limit`] kept in keyward's store
/// for each request, before the inner service sees it: exact across every
/// replica that shares the store ([`Limits::check`](crate::limit::Limits::check)).
///
/// A request over the limit is answered 429 with `Retry-After`; when the
/// store cannot be asked, 503: the layer fails closed and never lets a
/// request through uncounted. By default a request is counted against its
/// client address ([`ClientAddr`]: the socket's peer, IPv6 by its /64;
/// serve with `into_make_service_with_connect_info::<SocketAddr>()`), or
/// against the address the trusted proxies vouch for with
/// [`client_addr`](Self::client_addr); [`by`](Self::by) counts it
/// against a key of the application's choosing.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use keyward::axum::{ClientAddr, LimitLayer};
/// use keyward::limit::Limit;
/// use keyward::Keyward;
///
/// const SEARCH: Limit = Limit::new("search", 20, Duration::from_secs(60));
///
/// fn app(kw: Keyward) -> Router {
///     Router::new()
///         .route("/search", get(|| async { "results" }))
///         .layer(LimitLayer::new(kw, SEARCH).client_addr(ClientAddr::behind_proxies(1)))
/// }
/// ```
#[derive(Clone)]
pub struct LimitLayer {
    kw: Keyward,
    limit: Limit,
    key: KeyOf,
}

impl std::fmt::Debug for LimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitLayer")
            .field("limit", &self.limit.name())
            .finish_non_exhaustive()
    }
}

impl LimitLayer {
    /// One unit of `limit` per request, counted against the socket's peer.
    /// `kw` is a [`Keyward`], or a complete one.
    #[must_use]
    pub fn new(kw: impl Into<Keyward>, limit: Limit) -> Self {
        Self {
            kw: kw.into(),
            limit,
            key: KeyOf::Client(ClientAddr::socket()),
        }
    }

    /// Counts each request against its client address as `client` finds
    /// it.
    #[must_use]
    pub fn client_addr(mut self, client: ClientAddr) -> Self {
        self.key = KeyOf::Client(client);
        self
    }

    /// Counts each request against `key(request)`: an account, a tenant,
    /// an API key's id. A request for which it is `None` passes uncounted.
    #[must_use]
    pub fn by<F>(mut self, key: F) -> Self
    where
        F: Fn(&Request<Body>) -> Option<String> + Send + Sync + 'static,
    {
        self.key = KeyOf::Function(Arc::new(key));
        self
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`LimitLayer`] wraps around another.
#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    layer: LimitLayer,
}

impl<S> std::fmt::Debug for Limited<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// The key of `request`: `None` passes it uncounted.
fn key_of(key: &KeyOf, request: &Request<Body>) -> Option<String> {
    match key {
        KeyOf::Client(client) => {
            let peer = request
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            // Without an address, every such request shares one budget:
            // never uncounted.
            Some(
                client
                    .source(request.headers(), peer)
                    .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            )
        }
        KeyOf::Function(f) => f(request),
    }
}

impl<S> Service<Request<Body>> for Limited<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The service that was polled ready serves this request; a clone
        // takes its place for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let key = key_of(&self.layer.key, &request);
        let (kw, limit) = (self.layer.kw.clone(), self.layer.limit.clone());
        Box::pin(async move {
            if let Some(key) = key {
                let checked = match kw.limits() {
                    Ok(limits) => limits.check(&limit, &key).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = checked {
                    return Ok(Rejection::from(e).into_response());
                }
            }
            inner.call(request).await
        })
    }
}
