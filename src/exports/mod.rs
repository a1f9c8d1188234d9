//! Exports of a petition's confirmed signatures: CSV, NDJSON and the printable PDF dossier,
//! streamed with bounded memory, for the workspace (`web::admin::exports`) and the command line.

pub mod command;
pub mod csv;
pub mod ndjson;
pub mod pdf;
pub mod rows;
pub mod write;
