//! The CLI's side of the local API: one GET, decoded into the types the server encodes, or
//! left open as a stream (`follow`). No retries and no connection reuse: each command asks once.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// A local agent answers in microseconds; past this it is wedged, not slow.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Fetches `path` from the agent API at `api` and decodes the JSON body.
pub async fn get_json<T: DeserializeOwned>(api: SocketAddr, path: &str) -> anyhow::Result<T> {
    let body = within_timeout(api, async {
        let body = request(api, path, &[]).await?;
        let body = body
            .collect()
            .await
            .with_context(|| format!("reading the answer from {api}"))?;
        anyhow::Ok(body.to_bytes())
    })
    .await?;
    serde_json::from_slice(&body)
        .with_context(|| format!("decoding the answer of the peerd agent at {api}{path}"))
}

/// Sends `GET path` with `headers` to the agent at `api` and returns the body as it arrives,
/// once the agent has answered with success: for an answer that goes on, like the event stream.
pub async fn open(
    api: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Incoming> {
    within_timeout(api, request(api, path, headers)).await
}

async fn within_timeout<T>(
    api: SocketAddr,
    answer: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(TIMEOUT, answer).await.map_err(|_| {
        anyhow!(
            "the peerd agent at {api} did not answer within {}",
            humantime::format_duration(TIMEOUT)
        )
    })?
}

async fn request(
    api: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Incoming> {
    let stream = TcpStream::connect(api)
        .await
        .map_err(|err| anyhow!("no peerd agent answering at {api} ({err}); start one with `peerd agent`, or point --api at it"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("talking HTTP to {api}"))?;
    // Drives the connection; it ends when the body is read and `sender` is dropped.
    tokio::spawn(connection);
    let mut request = Request::get(path).header(hyper::header::HOST, api.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("requesting {path} from {api}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.into_body().collect().await;
        let body = body.map(|b| b.to_bytes()).unwrap_or_default();
        bail!(
            "the peerd agent at {api} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(response.into_body())
}
