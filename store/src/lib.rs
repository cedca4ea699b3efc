//! Placeholder replaced by the store work (issue 2).
