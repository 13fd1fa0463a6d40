//! Inspection of what flows carry, whatever their port. Pure functions of payload bytes: no
//! state, no I/O, no allocation.

pub mod detect;
