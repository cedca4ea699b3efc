//! Contiv's object model for our fabric: every object with Contiv's JSON field names and keys,
//! Contiv's defaults, and validation (field formats here, cross-object rules in [`integrity`]).
//!
//! This crate knows nothing of HTTP, stores or the kernel: the master, the agent and netctl
//! all speak these types.

pub mod collection;
pub mod error;
pub mod fields;
pub mod index;
pub mod integrity;
pub mod object;
pub mod objects;

pub use collection::Collection;
pub use error::{FieldError, ValidationError};
pub use integrity::Catalog;
pub use object::{Object, Reference};
pub use objects::*;

/// The tenant that exists from the start, as in Contiv.
pub const DEFAULT_TENANT: &str = "default";
