pub mod changes;
pub mod webhooks;
