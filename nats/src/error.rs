//! The bridge's errors.

use std::fmt;

/// What went wrong connecting, creating a stream or consumer, or stopping a source.
///
/// ```
/// let e = ringmq_nats::BridgeError::Stopped { unacked: 3 };
/// assert!(e.to_string().contains("3"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BridgeError {
    /// The bridge's runtime could not be built.
    Runtime(std::io::Error),
    /// No NATS server answered at `url`.
    Connect {
        /// The address tried.
        url: String,
        /// The client's error.
        source: async_nats::Error,
    },
    /// JetStream refused or did not answer.
    JetStream {
        /// What the bridge was doing.
        doing: &'static str,
        /// The client's error.
        source: async_nats::Error,
    },
    /// A source stopped with messages its stage had not yet processed (or not yet
    /// acknowledged): JetStream delivers them again to the durable consumer's next reader.
    Stopped {
        /// How many.
        unacked: usize,
    },
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Runtime(e) => write!(f, "could not build the bridge's runtime: {e}"),
            BridgeError::Connect { url, source } => write!(
                f,
                "no NATS server answered at {url}: {source} (is nats-server running, with -js?)"
            ),
            BridgeError::JetStream { doing, source } => {
                write!(f, "JetStream error {doing}: {source}")
            }
            BridgeError::Stopped { unacked } => write!(
                f,
                "the source stopped with {unacked} messages not acknowledged: JetStream will \
                 deliver them again"
            ),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Runtime(e) => Some(e),
            BridgeError::Connect { source, .. } | BridgeError::JetStream { source, .. } => {
                Some(source.as_ref())
            }
            BridgeError::Stopped { .. } => None,
        }
    }
}
