//! Errors of loading, parsing and validating a config.

use std::fmt;
use std::path::PathBuf;

/// One broken rule: the field path (`model.dropout`, `layers.mixing.fft_norm`) and a message
/// that gives the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the offending field, e.g. `model.dropout`.
    pub field: String,
    /// The value that was given and the rule it breaks, e.g. `got 1.5; must be 0 <= p <= 1`.
    pub message: String,
}

impl Violation {
    /// A violation of `field` described by `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every way a config can fail to load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written. Displays the path; the OS error is the
    /// [`source`](std::error::Error::source) (anyhow's `{:#}` prints `path: reason`).
    #[error("{}", .path.display())]
    Io {
        /// The file that was being read or written.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not TOML; `line` and `column` are 1-based.
    #[error("TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// The TOML is well formed but breaks rules of the schema; every violation of the file,
    /// one per line when displayed.
    #[error("{}", DisplayLines(.0))]
    Invalid(Vec<Violation>),
}

impl ConfigError {
    /// The violations of an [`ConfigError::Invalid`], else an empty slice.
    pub fn violations(&self) -> &[Violation] {
        match self {
            ConfigError::Invalid(v) => v,
            _ => &[],
        }
    }
}

struct DisplayLines<'a>(&'a [Violation]);

impl fmt::Display for DisplayLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_displays_one_line_per_violation() {
        let e = ConfigError::Invalid(vec![
            Violation::new("model.dropout", "got 1.5; must be 0 <= p <= 1"),
            Violation::new("model.hidden_dim", "missing; required"),
        ]);
        assert_eq!(
            e.to_string(),
            "model.dropout: got 1.5; must be 0 <= p <= 1\nmodel.hidden_dim: missing; required"
        );
        assert_eq!(e.violations().len(), 2);
    }

    #[test]
    fn io_names_the_path_and_chains_the_reason() {
        use std::error::Error as _;
        let e = ConfigError::Io {
            path: "a/b.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(e.to_string(), "a/b.toml");
        assert_eq!(e.source().map(ToString::to_string).as_deref(), Some("gone"));
    }

    #[test]
    fn syntax_names_line_and_column() {
        let e = ConfigError::Syntax {
            line: 3,
            column: 7,
            message: "expected `=`".into(),
        };
        assert_eq!(
            e.to_string(),
            "TOML syntax error at line 3, column 7: expected `=`"
        );
    }
}
