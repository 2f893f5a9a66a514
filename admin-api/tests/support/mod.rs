//! What the admin-api tests share: admin-token keys, a state and router with or without a
//! database, and one-call requests returning status, headers and JSON.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use dakoku_admin::Admin;
use dakoku_admin_api::{AppState, app};
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::GroupId;
use dakoku_testkit::{EmployeeSeed, Stack, TenantSeed, TestDatabase, TestGroup};
use dakoku_token::{AdminClaims, DeviceClaims, TokenKeys};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The admin-token keys of the tests.
pub fn keys() -> TokenKeys {
    TokenKeys::parse("adm1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("keys")
}

/// An admin token for `tenant` and `actor`, valid for an hour.
pub fn admin_token(tenant: &str, actor: &str) -> String {
    admin_token_until(tenant, actor, chrono::Utc::now().timestamp() + 3600)
}

/// An admin token expiring at `expires_at` (Unix seconds).
pub fn admin_token_until(tenant: &str, actor: &str, expires_at: i64) -> String {
    keys().mint_admin(&AdminClaims {
        tenant: tenant.parse().expect("tenant"),
        actor: actor.into(),
        expires_at,
    })
}

/// A device token signed with the same keys: still no admin token.
pub fn device_token(tenant: &str) -> String {
    keys().mint(&DeviceClaims {
        tenant: tenant.parse().expect("tenant"),
        device: "PT-1".parse().expect("device"),
        expires_at: chrono::Utc::now().timestamp() + 3600,
    })
}

/// State with the tests' keys and no operations connected (they answer 503).
pub fn state() -> Arc<AppState> {
    Arc::new(AppState::new(keys(), 3, 16 * 1024))
}

/// An answer: status, headers and the body as JSON (`Null` when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    /// The `field` of an error body.
    pub fn field(&self) -> Option<&str> {
        self.json["field"].as_str()
    }
}

/// One request through the router (`tower::ServiceExt::oneshot`).
pub async fn call(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app(Arc::clone(state))
        .oneshot(
            request
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

/// A database with tenant `acme` (employees E1, E2) and, with `topics`, its group's topics;
/// the state's operations connected to them.
pub struct World {
    pub stack: Stack,
    pub db: TestDatabase,
    pub group: GroupId,
    pub topics: Option<TestGroup>,
    pub state: Arc<AppState>,
}

pub async fn world(topics: bool) -> anyhow::Result<World> {
    let stack = Stack::from_env();
    let db = TestDatabase::create(&stack).await?;
    let (group, topics) = if topics {
        let g = TestGroup::create(&stack, 1).await?;
        (g.group.clone(), Some(g))
    } else {
        (
            format!("t-{}", dakoku_testkit::unique_suffix()).parse()?,
            None,
        )
    };
    for tenant in ["acme", "other"] {
        TenantSeed::new(tenant, &group)
            .licence(2)
            .employee(EmployeeSeed::licensed("E1", "C1"))
            .employee(EmployeeSeed::licensed("E2", "C2"))
            .seed(&db)
            .await?;
    }
    let state = state();
    state.set_admin(Admin::connect(&db.url, &KafkaArgs::new(&stack.brokers)).await?);
    Ok(World {
        stack,
        db,
        group,
        topics,
        state,
    })
}

impl World {
    pub async fn end(self) -> anyhow::Result<()> {
        drop(self.state);
        if let Some(topics) = self.topics {
            topics.delete_topics().await?;
        }
        self.db.drop_db().await
    }
}
