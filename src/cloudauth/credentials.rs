//! The access key a client signs with. Its secret never reaches a log line or an error.

use std::fmt;

/// An AccessKey pair, optionally with an STS security token.
#[derive(Clone)]
pub struct Credentials {
    /// The AccessKeyId, which is not secret and may be shown.
    pub access_key_id: String,
    /// The AccessKeySecret.
    access_key_secret: String,
    /// The STS SecurityToken of temporary credentials.
    security_token: Option<String>,
}

impl Credentials {
    /// A long-lived AccessKey pair.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
        }
    }

    /// Adds the security token of STS credentials.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// The secret, for signing only.
    pub fn secret(&self) -> &str {
        &self.access_key_secret
    }

    /// The STS security token, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let credentials =
            Credentials::new("LTAIexample", "s3cr3t-value").with_security_token("tok-value");
        let shown = format!("{credentials:?}");
        assert!(shown.contains("LTAIexample"));
        assert!(!shown.contains("s3cr3t-value"));
        assert!(!shown.contains("tok-value"));
    }
}
