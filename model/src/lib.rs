//! Placeholder replaced by the model work (issue 2).
