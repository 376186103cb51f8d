DROP TABLE round_outcomes;
DROP TABLE data_points;
DROP TABLE measures;
DROP TABLE pdsa_cycles;
