//! What the rules conclude: errors deny, warnings inform.

use serde::Serialize;

/// One problem, tied to the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// JSON path of the field, e.g. `spec.security.kms.connectionDetails.VAULT_ADDR`.
    pub field: String,
    /// A sentence that says what is wrong and what to do; never a secret value.
    pub message: String,
}

impl Finding {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The outcome of validation: allowed when there is no error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Secrets that could not be read (API unreachable, forbidden, timed out): whether these deny
    /// is the caller's policy, not a rule.
    #[serde(skip)]
    pub unreadable: Vec<Finding>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn deny(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Finding::new(field, message));
    }

    pub fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Finding::new(field, message));
    }

    /// Deny or warn depending on `deny`.
    pub fn report(&mut self, deny: bool, field: impl Into<String>, message: impl Into<String>) {
        if deny { self.deny(field, message) } else { self.warn(field, message) }
    }

    pub fn extend(&mut self, other: Verdict) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
        self.unreadable.extend(other.unreadable);
    }

    /// Ratcheting: an error that the old object already had, unchanged, becomes a warning so that
    /// users can always edit unrelated fields of an old cluster.
    pub fn ratchet(&mut self, old_errors: &[Finding]) {
        let (kept, old): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.errors).into_iter().partition(|e| !old_errors.contains(e));
        self.errors = kept;
        self.warnings.extend(old.into_iter().map(|f| Finding {
            message: format!("{} (already present before this update; allowed, but fix it)", f.message),
            field: f.field,
        }));
    }

    /// The admission denial message: every error, one per line.
    pub fn denial_message(&self) -> String {
        self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratchet_moves_only_unchanged_errors() {
        let mut v = Verdict::default();
        v.deny("a", "old problem");
        v.deny("b", "new problem");
        v.ratchet(&[Finding::new("a", "old problem"), Finding::new("c", "gone")]);
        assert_eq!(v.errors, vec![Finding::new("b", "new problem")]);
        assert_eq!(v.warnings.len(), 1);
        assert!(v.warnings[0].message.starts_with("old problem"));
    }
}
