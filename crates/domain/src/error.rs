//! The one validation error of the domain: which field was wrong and why.

/// A value from outside that does not make a valid domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The name of the offending field, as the API spells it (`e164`, `domains[2]`, ...).
    pub field: String,
    /// A sentence for a human saying what was expected.
    pub reason: String,
}

impl ValidationError {
    /// A validation error for `field` with a reason.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, reported under another field name (for nested values).
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}
