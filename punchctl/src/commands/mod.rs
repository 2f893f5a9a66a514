//! One module per verb: its clap arguments and its `run`, which parses nothing by hand and
//! holds no SQL or Kafka code: it calls [`crate::ops`] or `dakoku_store::master` and writes
//! through [`crate::output`] and [`crate::progress`].

pub mod anomalies;
pub mod attendance;
pub mod audit;
pub mod close;
pub mod correct;
pub mod db;
pub mod device;
pub mod employee;
pub mod intake;
pub mod lag;
pub mod licence;
pub mod payroll;
pub mod rebuild;
pub mod recheck;
pub mod reopen;
pub mod replay;
pub mod rules;
pub mod tenant;
pub mod topics;
