DROP TABLE instance_checks;
