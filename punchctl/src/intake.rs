//! `punchctl intake`: operator pauses of punch intake live in
//! [`dakoku_store::master::pauses`]; re-exported here at their old path.

use std::time::Duration;

pub use dakoku_store::master::pauses::{
    DEFAULT_RETRY_AFTER_SECONDS, IntakeError, MAX_RETRY_AFTER_SECONDS, MIN_RETRY_AFTER_SECONDS,
    Pause, PauseTarget, Paused, Scope, pause, resume, status,
};

/// `d` as a short human duration: `42s`, `5m 3s`, `3h 12m`, `2d 4h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(303)), "5m 3s");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 3600 + 720)),
            "3h 12m"
        );
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86_400 + 4 * 3600)),
            "2d 4h"
        );
    }
}
