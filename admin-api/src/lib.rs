//! `admin-api`: the administrators' HTTP API (CONTRACT §4.6, §4.7) over `dakoku-admin`:
//! corrections, the day view, the anomaly queue, closing and reopening payroll months, each
//! authorized by an admin token (`dka1.`) bound to one tenant and naming its actor.
//!
//! # Layout
//! - [`routes`]: [`ROUTES`], the route table the router is built from (and the OpenAPI test
//!   reads); the router and its metrics.
//! - `handlers`: one handler per endpoint.
//! - `auth`: bearer admin tokens → 401/403.
//! - `input`: bodies and parameters read field by field → 422 naming the field.
//! - [`error`]: [`ApiError`], the one error shape.
//! - [`spec`]: [`OPENAPI`], the hand-kept description.
//! - `state`: [`AppState`]; [`config`]: [`Config`]; [`server`]: connecting and serving.

mod auth;
pub mod config;
pub mod error;
mod handlers;
mod input;
pub mod routes;
pub mod server;
pub mod spec;
mod state;

pub use config::{Config, ConfigError, admin_keys};
pub use error::ApiError;
pub use routes::{Endpoint, ROUTES, Route, app};
pub use server::{connect, serve};
pub use spec::OPENAPI;
pub use state::AppState;
