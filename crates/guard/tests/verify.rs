//! Domain verification against real HTTP servers and a DNS responder on loopback.

use axum::{response::Redirect, routing::get, Router};
use callopt_domain::{DomainHost, VerificationToken};
use callopt_guard::verify::{Method, Verifier, VerifyError, VerifySettings};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::TXT, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// A DNS responder on loopback UDP answering TXT queries from `records` (name with its final
/// dot → text), NXDOMAIN otherwise.
async fn dns(records: HashMap<String, String>) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut answer = Message::new();
            answer
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_recursion_desired(query.recursion_desired())
                .set_recursion_available(true)
                .set_authoritative(true);
            for q in query.queries() {
                answer.add_query(q.clone());
                let name = q.name().to_ascii().to_lowercase();
                match records.get(&name) {
                    Some(text) if q.query_type() == RecordType::TXT => {
                        answer.add_answer(Record::from_rdata(
                            q.name().clone(),
                            5,
                            RData::TXT(TXT::new(vec![text.clone()])),
                        ));
                    }
                    _ => {
                        answer.set_response_code(ResponseCode::NXDomain);
                    }
                }
            }
            let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

const PATH: &str = VerificationToken::WELL_KNOWN_PATH;

fn token() -> VerificationToken {
    VerificationToken("callopt-verification=t0k3n".into())
}

fn verifier(allow_private: bool) -> Verifier {
    Verifier::new(&VerifySettings {
        nameservers: Vec::new(),
        allow_private,
    })
    .unwrap()
}

#[tokio::test]
async fn published_token_verifies() {
    let port =
        serve(Router::new().route(PATH, get(|| async { "callopt-verification=t0k3n\n" }))).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let method = verifier(true).verify(&host, &token()).await.unwrap();
    assert_eq!(method, Method::File);
}

#[tokio::test]
async fn loopback_hosts_are_refused_unless_allowed() {
    let port =
        serve(Router::new().route(PATH, get(|| async { "callopt-verification=t0k3n\n" }))).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let err = verifier(false)
        .verify_file(&host, &token())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a public address"), "{err}");
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let port =
        serve(Router::new().route(PATH, get(|| async { "callopt-verification=other" }))).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let err = verifier(true)
        .verify_file(&host, &token())
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::TokenMissing { .. }), "{err}");
}

#[tokio::test]
async fn missing_file_is_refused() {
    let port = serve(Router::new()).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    let err = verifier(true).verify(&host, &token()).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn redirect_within_the_host_is_followed() {
    let app = Router::new()
        .route(PATH, get(|| async { Redirect::temporary("/token.txt") }))
        .route("/token.txt", get(|| async { "callopt-verification=t0k3n" }));
    let port = serve(app).await;
    let host = DomainHost::parse("host", &format!("127.0.0.1:{port}")).unwrap();
    verifier(true).verify_file(&host, &token()).await.unwrap();
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
    let err = verifier(true)
        .verify_file(&host, &token())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
}

#[tokio::test]
async fn a_txt_record_verifies_at_either_name() {
    let server = dns(HashMap::from([
        (
            "_callopt.shop.example.".to_string(),
            "callopt-verification=t0k3n".to_string(),
        ),
        (
            "apex.example.".to_string(),
            "callopt-verification=t0k3n".to_string(),
        ),
        (
            "wrong.example.".to_string(),
            "callopt-verification=other".to_string(),
        ),
    ]))
    .await;
    let v = Verifier::new(&VerifySettings {
        nameservers: vec![server],
        allow_private: false,
    })
    .unwrap();
    for (host, proved) in [
        ("shop.example", true),
        ("apex.example:8443", true),
        ("wrong.example", false),
        ("absent.example", false),
    ] {
        let h = DomainHost::parse("host", host).unwrap();
        assert_eq!(v.verify_dns(&h, &token()).await, proved, "{host}");
    }
    let h = DomainHost::parse("host", "shop.example").unwrap();
    assert_eq!(v.verify(&h, &token()).await.unwrap(), Method::Dns);
}
