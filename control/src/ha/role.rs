//! Roles (placeholder, being written).
