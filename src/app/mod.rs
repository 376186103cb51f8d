pub mod demo;
pub mod learning_demo;
pub mod openapi;
pub mod routes;
pub mod startup;
