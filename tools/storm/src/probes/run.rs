//! Every probe in order, bracketed by control punches, then the raw topic checked.

use std::collections::BTreeSet;
use std::time::Duration;

use super::cases::{auth_cases, input_cases, item_cases, token};
use super::fixture::{ProbeEnv, ProbeFixture, ProbeReport};
use super::raw::raw_records;
use super::send::{control, send, slow_body, slow_headers};

/// Runs every probe against `env` with `fixture`'s tenants (from [`super::provision`]).
pub async fn run(env: &ProbeEnv, fixture: &ProbeFixture) -> anyhow::Result<ProbeReport> {
    // A connection per request: refusals decided before the body is read close the
    // connection (hyper cannot reuse it), and each probe should stand alone anyway.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()?;
    let url = format!("{}/v1/punches", env.base_url);
    let token_a = token(&env.keys, &fixture.tenant_a, &fixture.device_a, 3600);
    let token_b = token(&env.keys, &fixture.tenant_b, &fixture.device_b, 3600);
    let (a, b) = (&fixture.device_a, &fixture.device_b);

    // The acceptor learns the new tenants from its snapshot: wait until A's control is acked.
    let mut controls: BTreeSet<(String, String, u64)> = BTreeSet::new();
    control(&http, &url, &token_a, a, 1).await?;
    controls.insert((fixture.tenant_a.to_string(), a.to_string(), 1));
    control(&http, &url, &token_b, b, 1).await?;
    controls.insert((fixture.tenant_b.to_string(), b.to_string(), 1));

    let mut cases = auth_cases(env, fixture, &token_a)?;
    cases.extend(input_cases(env, a, &token_a));
    cases.extend(item_cases(a, &token_a));
    let mut probes = Vec::new();
    for case in cases {
        probes.push(send(&http, &url, case).await?);
    }
    probes.push(slow_headers(env).await?);
    probes.push(slow_body(env, &token_a).await?);

    // The last control: once it is acked, whatever the probes appended is in the log.
    control(&http, &url, &token_a, a, 2).await?;
    controls.insert((fixture.tenant_a.to_string(), a.to_string(), 2));
    let (found, leaked, missing_controls) = raw_records(env, fixture, &controls).await?;
    Ok(ProbeReport {
        probes,
        raw_records_of_probe_tenants: found,
        leaked,
        missing_controls,
    })
}
