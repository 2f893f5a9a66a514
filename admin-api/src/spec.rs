//! [`OPENAPI`], the API's description, kept by hand in the crate and checked against
//! [`ROUTES`](crate::ROUTES) by a test (`tests/openapi.rs`).

/// `admin-api/openapi.yaml`, served at `GET /openapi.yaml`.
pub const OPENAPI: &str = include_str!("../openapi.yaml");
