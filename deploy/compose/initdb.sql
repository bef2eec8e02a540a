-- Run once by the postgres container on an empty data volume: a small contacts table for the
-- look-up workers (initdb-reader.sh then makes their read-only account, with the password from
-- the operator's secret file). The writer creates the journal table itself
-- (writer.create_table = true in compose/cti-journal.toml).
CREATE TABLE contacts (
    id         integer PRIMARY KEY,
    first_name varchar(50),
    last_name  varchar(50),
    company    varchar(100),
    phone      varchar(40),
    mobile     varchar(40)
);
INSERT INTO contacts VALUES
    (1, 'Anna', 'Müller', 'Bäckerei Huber', '089 1234567', '0171 2345678'),
    (2, 'Bernd', 'Schmidt', 'Autohaus Süd GmbH', '+49 (0)30 9876543', NULL),
    (3, 'Claudia', 'Weber', 'Kanzlei Roth & Partner', '0221/555123', '0152 7654321');
