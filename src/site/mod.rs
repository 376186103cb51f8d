pub mod assets;
pub mod forms;
pub mod pages;
pub mod render;
