DROP TABLE disclosure_statements;
DROP TABLE disclosure_reviews;
DROP TABLE disclosure_relationships;
DROP TABLE disclosures;
DROP DOMAIN mitigation_kind;
DROP DOMAIN relationship_nature;
ALTER TABLE series DROP COLUMN disclosure_valid_months, DROP COLUMN planners;
