DROP TABLE materials;
DROP DOMAIN material_visibility;
DROP DOMAIN material_kind;
