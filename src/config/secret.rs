//! Secrets (passwords, tokens, client secrets) kept out of logs, errors and debug output.

use std::fmt;
use std::path::Path;

/// A secret value read from a file or environment variable; Debug/Display print "[redacted]".
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// A secret received whole (a bind password sent to an agent with its job).
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The secret text, for handing to a protocol library; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret file, dropping one trailing newline (editors and `echo` add one).
    pub fn from_file(path: &Path) -> Result<Secret, std::io::Error> {
        let mut text = std::fs::read_to_string(path)?;
        if text.ends_with("\r\n") {
            text.truncate(text.len() - 2);
        } else if text.ends_with('\n') {
            text.truncate(text.len() - 1);
        }
        Ok(Secret(text))
    }

    /// Reads a secret from an environment variable; None when unset or not valid Unicode.
    pub fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var).ok().map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
// A failed unwrap is a failed test, with the location in the panic message.
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_loses_exactly_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n\n").unwrap();
        assert_eq!(Secret::from_file(&p).unwrap().expose(), "s3cret\n");
        std::fs::write(&p, "s3cret\r\n").unwrap();
        assert_eq!(Secret::from_file(&p).unwrap().expose(), "s3cret");
        std::fs::write(&p, "s3cret").unwrap();
        assert_eq!(Secret::from_file(&p).unwrap().expose(), "s3cret");
    }

    #[test]
    fn env_var_is_read_and_unset_is_none() {
        // Setting variables needs `unsafe` in edition 2024 (forbidden here), so read one that
        // the test process already has.
        let (name, value) = std::env::vars()
            .find(|(_, v)| !v.is_empty())
            .expect("the test process has some environment");
        assert_eq!(Secret::from_env(&name).unwrap().expose(), value);
        assert!(Secret::from_env("BRIDGEHEAD_TEST_VARIABLE_THAT_IS_NEVER_SET").is_none());
    }

    #[test]
    fn debug_and_display_redact() {
        let s = Secret("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s)), "Some([redacted])");
    }
}
