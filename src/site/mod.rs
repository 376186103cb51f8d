pub mod assets;
pub mod checkin;
pub mod forms;
pub mod me;
pub mod pages;
pub mod render;
pub mod session;
pub mod signin;
