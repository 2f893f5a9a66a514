//! Where Kafka is and how to talk to it, as flags and environment every binary flattens in:
//! the one place brokers and (later) security settings are read.

use std::path::PathBuf;

/// The local stack's broker, the default everywhere.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// Kafka connection settings. Binaries `#[command(flatten)]` this; the flag and variable names
/// are the ones every Dakoku binary has always used (`--brokers`, `KAFKA_BROKERS`).
///
/// Properties (`security.protocol`, `sasl.*`, `ssl.*`, tuning) pass through to librdkafka
/// unchanged: from a Java-style properties file first, then `--kafka-property`, later wins.
/// They are applied last, over what the code sets for a client's role, so an operator's
/// setting always holds. Values of secret-looking keys never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[arg(long, global = true, env = "KAFKA_BROKERS", default_value = DEFAULT_BROKERS)]
    pub brokers: String,
    /// A librdkafka property for every Kafka client, `key=value` (repeatable; over the file).
    #[arg(
        long = "kafka-property",
        global = true,
        value_name = "KEY=VALUE",
        value_parser = parse_property
    )]
    pub properties: Vec<(String, String)>,
    /// A file of librdkafka properties (`key=value` lines, `#` comments), e.g. the TLS and SASL
    /// settings of a cluster.
    #[arg(
        long,
        global = true,
        env = "KAFKA_PROPERTIES_FILE",
        value_name = "PATH"
    )]
    pub kafka_properties_file: Option<PathBuf>,
}

impl Default for KafkaArgs {
    fn default() -> Self {
        Self::new(DEFAULT_BROKERS)
    }
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(key, value)| (key.as_str(), shown(key, value)))
            .collect();
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .field("kafka_properties_file", &self.kafka_properties_file)
            .finish()
    }
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The properties file could not be read.
    #[error("cannot read the Kafka properties file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A property is malformed or not allowed.
    #[error("Kafka property {0}")]
    Property(String),
}

impl KafkaArgs {
    /// Settings for `brokers` and nothing else (tests, tools that get brokers from elsewhere).
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
            kafka_properties_file: None,
        }
    }

    /// Adds a pass-through property (after those given so far, so it wins over them).
    #[must_use]
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// The environment that gives a child process (a service a tool or test starts) the same
    /// settings: `KAFKA_BROKERS`, and `KAFKA_PROPERTIES_FILE` when one is used. Properties
    /// given with `--kafka-property` have no variable; put them in the file to share them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("KAFKA_BROKERS", self.brokers.clone())];
        if let Some(path) = &self.kafka_properties_file {
            env.push(("KAFKA_PROPERTIES_FILE", path.display().to_string()));
        }
        env
    }

    /// Every pass-through property in the order they apply: the file's, then the flags'.
    pub fn resolved_properties(&self) -> Result<Vec<(String, String)>, ArgsError> {
        let mut all = match &self.kafka_properties_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ArgsError::File {
                    path: path.clone(),
                    source,
                })?;
                parse_properties_file(&text)
                    .map_err(|e| ArgsError::Property(format!("in {}: {e}", path.display())))?
            }
            None => Vec::new(),
        };
        for (key, _) in &self.properties {
            check_key(key).map_err(ArgsError::Property)?;
        }
        all.extend(self.properties.iter().cloned());
        Ok(all)
    }
}

/// Parses one `key=value` (the `--kafka-property` flag).
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not key=value"))?;
    let key = key.trim();
    check_key(key)?;
    Ok((key.to_owned(), value.trim().to_owned()))
}

/// Parses a Java-style properties file: `key=value` lines, blank lines and `#`/`!` comments.
pub fn parse_properties_file(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .map(|(n, line)| parse_property(line).map_err(|e| format!("line {n}: {e}")))
        .collect()
}

/// Brokers come from `--brokers` only: two sources for one setting would leave an operator
/// guessing which one a client used.
fn check_key(key: &str) -> Result<(), String> {
    match key {
        "" => Err("has an empty key".into()),
        "bootstrap.servers" | "metadata.broker.list" => {
            Err(format!("{key} is set with --brokers / KAFKA_BROKERS"))
        }
        _ => Ok(()),
    }
}

/// Whether `key`'s value is a secret (passwords, keys, tokens, JAAS configs).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        ".key.pem",
        "ssl.key",
        "credentials",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// The value as it may be shown: secrets redacted.
pub(crate) fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) { "<redacted>" } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn brokers_default_to_the_local_stack_and_properties_repeat() {
        let cli = Cli::try_parse_from(["x"]).expect("no arguments are needed");
        // KAFKA_BROKERS may be set by the test environment; only the shape is checked then.
        assert!(!cli.kafka.brokers.is_empty());
        assert!(cli.kafka.properties.is_empty());
        let cli = Cli::try_parse_from([
            "x",
            "--brokers",
            "k1:9092,k2:9092",
            "--kafka-property",
            "security.protocol=SASL_SSL",
            "--kafka-property",
            "sasl.password=hunter2",
        ])
        .expect("valid flags");
        assert_eq!(cli.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(
            cli.kafka.properties,
            vec![
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("sasl.password".to_owned(), "hunter2".to_owned()),
            ]
        );
    }

    #[derive(Debug, Parser)]
    struct WithVerbs {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(subcommand)]
        verb: Verb,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Verb {
        Lag,
    }

    #[test]
    fn the_flags_are_global_so_they_follow_a_verb_as_punchctl_has_them() {
        let cli = WithVerbs::try_parse_from([
            "punchctl",
            "lag",
            "--brokers",
            "k:9092",
            "--kafka-property",
            "linger.ms=1",
        ])
        .expect("flags after the verb");
        assert!(matches!(cli.verb, Verb::Lag));
        assert_eq!(cli.kafka.brokers, "k:9092");
        assert_eq!(cli.kafka.properties.len(), 1);
    }

    #[test]
    fn a_child_process_gets_the_same_cluster() {
        let mut args = KafkaArgs::new("k:9092");
        assert_eq!(args.env(), vec![("KAFKA_BROKERS", "k:9092".to_owned())]);
        args.kafka_properties_file = Some(PathBuf::from("/etc/dakoku/kafka.properties"));
        assert_eq!(
            args.env()[1],
            (
                "KAFKA_PROPERTIES_FILE",
                "/etc/dakoku/kafka.properties".to_owned()
            )
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let args = KafkaArgs::new("k:9092")
            .with_property("sasl.password", "hunter2")
            .with_property("sasl.jaas.config", "org.x required password=\"p\";")
            .with_property("security.protocol", "SASL_SSL");
        let text = format!("{args:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("required"),
            "{text}"
        );
        assert!(text.contains("SASL_SSL"), "{text}");
    }

    #[test]
    fn brokers_cannot_be_smuggled_in_as_a_property() {
        assert!(parse_property("bootstrap.servers=evil:9092").is_err());
        assert!(parse_property("no-equals").is_err());
        assert_eq!(
            parse_property(" linger.ms = 5 "),
            Ok(("linger.ms".to_owned(), "5".to_owned()))
        );
    }

    #[test]
    fn a_properties_file_skips_comments_and_the_flags_win() {
        let dir = std::env::temp_dir().join(format!("dakoku-kafka-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("client.properties");
        std::fs::write(
            &path,
            "# cluster\nsecurity.protocol=SSL\n\n! also a comment\nlinger.ms=5\n",
        )
        .expect("write");
        let mut args = KafkaArgs::new("k:9092").with_property("linger.ms", "20");
        args.kafka_properties_file = Some(path);
        let all = args.resolved_properties().expect("readable");
        assert_eq!(
            all,
            vec![
                ("security.protocol".to_owned(), "SSL".to_owned()),
                ("linger.ms".to_owned(), "5".to_owned()),
                ("linger.ms".to_owned(), "20".to_owned()),
            ]
        );
        assert!(
            parse_properties_file("a=1\nbroken\n")
                .unwrap_err()
                .contains("line 2")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
