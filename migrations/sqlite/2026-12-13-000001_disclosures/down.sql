DROP TABLE disclosure_statements;
DROP TABLE disclosure_reviews;
DROP TABLE disclosure_relationships;
DROP TABLE disclosures;
ALTER TABLE series DROP COLUMN disclosure_valid_months;
ALTER TABLE series DROP COLUMN planners;
