pub mod chart;
pub mod runchart;
