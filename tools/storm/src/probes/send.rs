//! Sending: one case and its verdict, the control punches, and the slowloris probes on raw
//! sockets.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dakoku_schemas::DeviceId;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::cases::{Case, Expect, body, punch};
use super::fixture::{ProbeEnv, ProbeOutcome};

/// Posts one valid punch until it is acked (the snapshot may not know the tenant yet).
pub(super) async fn control(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    device: &DeviceId,
    seq: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body(device, vec![punch(seq)]))
            .send()
            .await?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && answer["acked"] == json!([seq]) {
            return Ok(());
        }
        last = format!("{status} {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("control punch {device}/{seq} not acked within 30 s; last answer: {last}")
}

pub(super) async fn send(
    http: &reqwest::Client,
    url: &str,
    case: Case,
) -> anyhow::Result<ProbeOutcome> {
    // The probes come from one device in quick succession: the per-device rate limit may
    // answer 429 first. That is not what is probed, so wait as told and send again.
    let mut attempts = 0;
    let (started, status, retry_after, answer) = loop {
        let mut request = http
            .post(url)
            .header("content-type", case.content_type)
            .body(case.body.clone());
        if let Some(token) = &case.token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let response = request.send().await.with_context(|| case.name)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        attempts += 1;
        match retry_after {
            Some(wait) if status == 429 && attempts < 10 => {
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 10))).await;
            }
            _ => break (started, status, retry_after.is_some(), answer),
        }
    };
    let millis = started.elapsed().as_millis() as u64;
    let (got, ok) = match case.expect {
        Expect::Refused(want_status, want_code) => {
            let code = answer["error"].as_str().unwrap_or("(no error code)");
            let has_message = answer["message"].as_str().is_some_and(|m| !m.is_empty());
            (
                format!("{status} {code}"),
                status == want_status && code == want_code && has_message && !retry_after,
            )
        }
        Expect::ItemRejected => {
            let acked = answer["acked"].as_array().map_or(usize::MAX, Vec::len);
            let rejected = answer["rejected"].as_array().map_or(0, Vec::len);
            let error = answer["rejected"][0]["error"].as_str().unwrap_or("");
            (
                format!("{status}, {acked} acked, {rejected} rejected: {error}"),
                status == 200 && acked == 0 && rejected == 1 && !error.is_empty(),
            )
        }
    };
    Ok(ProbeOutcome {
        name: case.name.to_owned(),
        expected: case.expect.to_string(),
        got,
        millis,
        ok,
    })
}

fn host_port(base_url: &str) -> anyhow::Result<String> {
    base_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .with_context(|| format!("{base_url}: expected http://host:port"))
}

/// Reads what the server sends until it closes, or `deadline`.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> (String, bool) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(deadline, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (String::from_utf8_lossy(&answer).into_owned(), read.is_ok())
}

/// Slowloris: headers that never end. The acceptor must drop the connection within its header
/// timeout instead of holding it.
pub(super) async fn slow_headers(env: &ProbeEnv) -> anyhow::Result<ProbeOutcome> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(host_port(&env.base_url)?).await?;
    stream
        .write_all(b"POST /v1/punches HTTP/1.1\r\nHost: probe\r\nX-Slow: ")
        .await?;
    let (answer, closed) = read_until_closed(&mut stream, env.slow_client_deadline).await;
    let first = answer.lines().next().unwrap_or("").to_owned();
    let got = if closed {
        format!("closed after {} ms {first}", started.elapsed().as_millis())
    } else {
        "still open".to_owned()
    };
    Ok(ProbeOutcome {
        name: "slowloris: headers never finish".into(),
        expected: format!("closed within {:?}", env.slow_client_deadline),
        got,
        millis: started.elapsed().as_millis() as u64,
        ok: closed && (first.is_empty() || first.contains(" 408 ")),
    })
}

/// A body sent far slower than announced: `408 slow_body`, and the connection dropped.
pub(super) async fn slow_body(env: &ProbeEnv, token: &str) -> anyhow::Result<ProbeOutcome> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(host_port(&env.base_url)?).await?;
    let head = format!(
        "POST /v1/punches HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"device_id\""
    );
    stream.write_all(head.as_bytes()).await?;
    let (answer, closed) = read_until_closed(&mut stream, env.slow_client_deadline).await;
    let first = answer.lines().next().unwrap_or("").to_owned();
    let code_ok = answer.contains("slow_body");
    Ok(ProbeOutcome {
        name: "slow body: 200 bytes announced, 13 sent".into(),
        expected: "408 slow_body".into(),
        got: if closed || !answer.is_empty() {
            format!("{first} {}", if code_ok { "slow_body" } else { "" })
        } else {
            "no answer".into()
        },
        millis: started.elapsed().as_millis() as u64,
        ok: first.contains(" 408 ") && code_ok,
    })
}
