//! The crate's error type and the diagnostics it carries.

use std::fmt;
use std::path::PathBuf;

use crate::source::{FieldPath, Span};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem with the input, located as precisely as the input allows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where it was written; `None` for specs built in code.
    pub span: Option<Span>,
    /// The field it concerns; root for whole-file problems.
    pub path: FieldPath,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{span}: ")?;
        }
        // With a position, always name the field (the root for whole-document problems).
        if self.span.is_some() || !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A problem found in a spec before it is located in source: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field it concerns.
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
}

impl Violation {
    /// A violation of `path`.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Violation { path, message: message.into() }
    }
}

/// Everything that can go wrong in `enclave-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a valid spec; every problem found is listed.
    #[error("{}", Invalid(diagnostics))]
    Invalid {
        /// The problems, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

struct Invalid<'a>(&'a [Diagnostic]);

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl Error {
    /// An invalid-input error with a single diagnostic.
    pub fn invalid(diagnostic: Diagnostic) -> Self {
        Error::Invalid { diagnostics: vec![diagnostic] }
    }

    /// Whether the input (not the environment) is at fault.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::Invalid { .. })
    }
}
