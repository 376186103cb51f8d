pub mod changes;
pub mod destinations;
pub mod webhooks;
