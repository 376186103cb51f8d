pub mod chart;
pub mod initiatives;
pub mod measures;
pub mod outcomes;
pub mod pdsa;
pub mod report;
pub mod runchart;
