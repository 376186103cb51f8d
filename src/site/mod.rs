pub mod assets;
pub mod checkin;
pub mod forms;
pub mod pages;
pub mod render;
