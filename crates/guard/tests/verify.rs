//! Domain verification against real HTTP servers on loopback.

use axum::{response::Redirect, routing::get, Router};
use callopt_domain::{DomainHost, VerificationToken};
use callopt_guard::verify::{verify_domain, VerifyError};

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

const PATH: &str = VerificationToken::WELL_KNOWN_PATH;

fn token() -> VerificationToken {
    VerificationToken("callopt-verification=t0k3n".into())
}

#[tokio::test]
async fn published_token_verifies() {
    let port =
        serve(Router::new().route(PATH, get(|| async { "callopt-verification=t0k3n\n" }))).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    verify_domain(&host, &token()).await.unwrap();
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let port =
        serve(Router::new().route(PATH, get(|| async { "callopt-verification=other" }))).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let err = verify_domain(&host, &token()).await.unwrap_err();
    assert!(matches!(err, VerifyError::TokenMissing { .. }), "{err}");
}

#[tokio::test]
async fn missing_file_is_refused() {
    let port = serve(Router::new()).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let err = verify_domain(&host, &token()).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn redirect_within_the_host_is_followed() {
    let app = Router::new()
        .route(PATH, get(|| async { Redirect::temporary("/token.txt") }))
        .route("/token.txt", get(|| async { "callopt-verification=t0k3n" }));
    let port = serve(app).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    verify_domain(&host, &token()).await.unwrap();
}

#[tokio::test]
async fn redirect_to_another_host_is_never_followed() {
    // The other host publishes the right token, but belongs to someone else.
    let other =
        serve(Router::new().route(PATH, get(|| async { "callopt-verification=t0k3n" }))).await;
    let target = format!("http://localhost:{other}{PATH}");
    let app = Router::new().route(
        PATH,
        get(move || {
            let target = target.clone();
            async move { Redirect::temporary(&target) }
        }),
    );
    let port = serve(app).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let err = verify_domain(&host, &token()).await.unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
}
