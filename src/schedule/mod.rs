pub mod calendar;
pub mod departments;
pub mod feedback;
pub mod recurrence;
pub mod rounds;
pub mod series;
pub mod speakers;
