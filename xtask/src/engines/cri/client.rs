//! A unary gRPC client over HTTP/2 (the `h2` crate) on a unix socket: what crictl does for
//! the calls the harness makes. One current-thread tokio runtime drives the connection; each
//! call blocks until the answer or its time limit.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use h2::client::SendRequest;
use tokio::runtime::Runtime;

pub struct Client {
    runtime: Runtime,
    send: SendRequest<Bytes>,
}

impl Client {
    /// Connects to the gRPC server on `socket` (HTTP/2 with prior knowledge).
    pub fn connect(socket: &Path) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("start a tokio runtime")?;
        let send = runtime.block_on(async {
            let io = tokio::net::UnixStream::connect(socket)
                .await
                .with_context(|| format!("connect to {}", socket.display()))?;
            let (send, connection) = h2::client::handshake(io)
                .await
                .context("HTTP/2 handshake")?;
            // Runs whenever a call blocks on the runtime.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, anyhow::Error>(send)
        })?;
        Ok(Client { runtime, send })
    }

    /// Calls `/SERVICE/METHOD` with an encoded request message; the encoded response.
    pub fn call(&mut self, path: &str, request: Vec<u8>, limit: Duration) -> Result<Vec<u8>> {
        let send = self.send.clone();
        self.runtime
            .block_on(async {
                tokio::time::timeout(limit, unary(send, path, request))
                    .await
                    .map_err(|_| anyhow!("no answer within {} s", limit.as_secs()))?
            })
            .with_context(|| format!("gRPC {path}"))
    }
}

async fn unary(send: SendRequest<Bytes>, path: &str, request: Vec<u8>) -> Result<Vec<u8>> {
    let mut send = send.ready().await.context("the connection is gone")?;
    let head = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?;
    let (response, mut stream) = send.send_request(head, false)?;
    stream.send_data(Bytes::from(frame(&request)), true)?;
    let response = response.await?;
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        bail!("HTTP status {}", parts.status);
    }
    // A "trailers-only" answer carries the status in its headers.
    status(&parts.headers)?;
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    if let Some(trailers) = body.trailers().await? {
        status(&trailers)?;
    }
    unframe(&data)
}

/// gRPC's length prefix: a compressed flag (0) and the length as 4 big-endian bytes.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn unframe(data: &[u8]) -> Result<Vec<u8>> {
    if data.len() < 5 {
        bail!("answer without a message ({} bytes)", data.len());
    }
    if data[0] != 0 {
        bail!(
            "compressed answer (flag {}), which was not asked for",
            data[0]
        );
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    data.get(5..5 + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| anyhow!("answer shorter than its length prefix ({len})"))
}

/// Fails with the server's message when `grpc-status` is present and not 0 (OK).
fn status(headers: &http::HeaderMap) -> Result<()> {
    let Some(code) = headers.get("grpc-status") else {
        return Ok(());
    };
    let code = code.to_str().unwrap_or("?");
    if code == "0" {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.to_str().unwrap_or("")))
        .unwrap_or_default();
    bail!("{message} (gRPC status {code} {})", code_name(code))
}

fn code_name(code: &str) -> &'static str {
    match code {
        "1" => "CANCELLED",
        "2" => "UNKNOWN",
        "3" => "INVALID_ARGUMENT",
        "4" => "DEADLINE_EXCEEDED",
        "5" => "NOT_FOUND",
        "6" => "ALREADY_EXISTS",
        "9" => "FAILED_PRECONDITION",
        "12" => "UNIMPLEMENTED",
        "13" => "INTERNAL",
        "14" => "UNAVAILABLE",
        _ => "",
    }
}

/// grpc-message is percent-encoded UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let framed = frame(b"\x0a\x02v1");
        assert_eq!(framed, b"\x00\x00\x00\x00\x04\x0a\x02v1");
        assert_eq!(unframe(&framed).unwrap(), b"\x0a\x02v1");
        assert!(unframe(b"\x00\x00\x00\x00\x09ab").is_err());
        assert!(unframe(b"\x01\x00\x00\x00\x00").is_err());
    }

    #[test]
    fn a_failed_status_carries_the_decoded_message() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", "5".parse().unwrap());
        headers.insert(
            "grpc-message",
            "container %22x%22 not found%3A 100%25".parse().unwrap(),
        );
        let error = status(&headers).unwrap_err().to_string();
        assert_eq!(
            error,
            "container \"x\" not found: 100% (gRPC status 5 NOT_FOUND)"
        );
        headers.insert("grpc-status", "0".parse().unwrap());
        assert!(status(&headers).is_ok());
    }
}
