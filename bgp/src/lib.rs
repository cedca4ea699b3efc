//! Placeholder replaced by the BGP speaker work (issue 3).
