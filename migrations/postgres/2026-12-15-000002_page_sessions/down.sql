DROP TABLE page_sessions;
DROP TABLE page_signins;
