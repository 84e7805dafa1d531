//! How a job tells its caller what it is doing. The library never prints: the binary turns
//! these calls into progress bars on a terminal and log lines in a batch job's log; a test, a
//! benchmark or a service can drop them ([`Silent`]) or record them.

/// Receives a job's progress. Every method has a do-nothing default, so an implementation
/// overrides only what it shows. Calls come from the job's own thread, in order.
pub trait Progress: Sync {
    /// A stage began: its name, and its size in units (bytes of input for embedding) when it
    /// is known ahead; the previous stage, if any, has ended.
    fn stage(&self, _name: &str, _total: Option<u64>) {}
    /// Units of the current stage done so far.
    fn advance(&self, _done: u64) {}
    /// A milestone of a long stage (a chunk of prompts embedded): worth a line in a log that
    /// has no progress bar, noise on a terminal that has one.
    fn milestone(&self, _message: &str) {}
    /// Something the user should know of: a reuse, a re-embedding and why, skipped lines, what
    /// training is about to learn from.
    fn note(&self, _message: &str) {}
    /// The job's last stage ended.
    fn done(&self) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {}
