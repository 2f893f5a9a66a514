//! How `punchctl rules` shows a tenant's work rules: a table of the versions in force (one
//! column per version), their history, the rules file `attendance compute --rules` reads, and
//! what a `rules set` recorded.

use std::fmt::Write as _;
use std::io::Write;

use dakoku_rules::v2::rulebook::{KEYS, value_text};
use dakoku_schemas::TenantId;
use dakoku_store::master::rules::{RulesRecorded, TenantRules};

use crate::output::{timestamp, write_table};

/// The versions in force as a table (a row per rule, a column per version), then every
/// recorded version with when, by whom and why.
pub fn write_versions(out: &mut dyn Write, rules: &TenantRules) -> std::io::Result<()> {
    let in_force: Vec<_> = rules.in_force().collect();
    let headers: Vec<String> = std::iter::once("rule".to_owned())
        .chain(in_force.iter().map(|v| format!("v{}", v.version)))
        .collect();
    let objects: Vec<_> = in_force.iter().map(|v| v.rules.to_json()).collect();
    let rows: Vec<Vec<String>> = KEYS
        .iter()
        .map(|key| {
            std::iter::once((*key).to_owned())
                .chain(
                    objects
                        .iter()
                        .map(|o| o.get(*key).map(value_text).unwrap_or_default()),
                )
                .collect()
        })
        .collect();
    writeln!(out, "work rules of {}:", rules.tenant)?;
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    write_table(out, &headers, &rows)?;
    writeln!(out)?;
    writeln!(out, "recorded versions:")?;
    let history: Vec<Vec<String>> = rules
        .versions
        .iter()
        .map(|v| {
            vec![
                format!("v{}", v.version),
                v.rules.effective_from.to_string(),
                v.superseded_by
                    .map_or_else(|| "in force".to_owned(), |n| format!("superseded by v{n}")),
                timestamp(v.recorded_at),
                v.recorded_by.clone(),
                v.reason.clone(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "version",
            "effective_from",
            "state",
            "recorded_at",
            "recorded_by",
            "reason",
        ],
        &history,
    )
}

/// The versions in force as the rules file (`{"versions": [...]}`, every rule written out, one
/// key a line so errors of `attendance compute` point at the rule).
pub fn rules_file(rules: &TenantRules) -> String {
    let mut text = String::from("{\n  \"versions\": [\n");
    let versions: Vec<_> = rules.in_force().collect();
    for (i, version) in versions.iter().enumerate() {
        let object = version.rules.to_json();
        text.push_str("    {\n");
        for (k, key) in KEYS.iter().enumerate() {
            let value = object.get(*key).cloned().unwrap_or_default();
            let comma = if k + 1 < KEYS.len() { "," } else { "" };
            let _ = writeln!(text, "      \"{key}\": {value}{comma}");
        }
        text.push_str(if i + 1 < versions.len() {
            "    },\n"
        } else {
            "    }\n"
        });
    }
    text.push_str("  ]\n}\n");
    text
}

/// What `rules set` recorded, ending with the recompute it asked for.
pub fn write_recorded(
    out: &mut dyn Write,
    tenant: &TenantId,
    recorded: &RulesRecorded,
) -> std::io::Result<()> {
    let supersedes = recorded
        .supersedes
        .map(|n| format!(" (supersedes v{n}, recorded earlier for that date)"))
        .unwrap_or_default();
    writeln!(
        out,
        "rules of {tenant}: recorded version {} from {}{supersedes}:",
        recorded.version, recorded.effective_from
    )?;
    for change in &recorded.changes {
        writeln!(
            out,
            "  {}: {} -> {}",
            change.key, change.before, change.after
        )?;
    }
    writeln!(
        out,
        "the attendance consumer recomputes {tenant}'s days from {} and their months, and publishes those that change (request {})",
        recorded.recompute_from, recorded.request_id
    )
}
