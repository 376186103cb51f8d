pub mod attendance;
pub mod attendees;
pub mod checkin;
pub mod transcripts;
