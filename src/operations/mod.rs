pub mod backup;
pub mod health;
pub mod shutdown;
