//! The CLI's side of the local API: one GET, decoded into the types the server encodes.
//! No retries and no connection reuse: each command asks once.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// A local agent answers in microseconds; past this it is wedged, not slow.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Fetches `path` from the agent API at `api` and decodes the JSON body.
pub async fn get_json<T: DeserializeOwned>(api: SocketAddr, path: &str) -> anyhow::Result<T> {
    let body = tokio::time::timeout(TIMEOUT, get(api, path))
        .await
        .map_err(|_| {
            anyhow!(
                "the peerd agent at {api} did not answer within {}",
                humantime::format_duration(TIMEOUT)
            )
        })??;
    serde_json::from_slice(&body)
        .with_context(|| format!("decoding the answer of the peerd agent at {api}{path}"))
}

async fn get(api: SocketAddr, path: &str) -> anyhow::Result<Bytes> {
    let stream = TcpStream::connect(api)
        .await
        .map_err(|err| anyhow!("no peerd agent answering at {api} ({err}); start one with `peerd agent`, or point --api at it"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("talking HTTP to {api}"))?;
    // Drives the connection; it ends when the response is read and `sender` is dropped.
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, api.to_string())
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("requesting {path} from {api}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .with_context(|| format!("reading the answer from {api}"))?
        .to_bytes();
    if !status.is_success() {
        bail!(
            "the peerd agent at {api} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(body)
}
