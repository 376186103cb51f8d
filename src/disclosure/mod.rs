pub mod readiness;
pub mod relationships;
pub mod reviews;
pub mod statements;
