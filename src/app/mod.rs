pub mod demo;
pub mod openapi;
pub mod routes;
pub mod startup;
