DROP TABLE feedback;
DROP TABLE round_departments;
DROP TABLE round_speakers;
DROP TABLE rounds;
DROP TABLE speakers;
DROP TABLE departments;
