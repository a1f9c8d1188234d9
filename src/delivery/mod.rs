//! Delivery to the recipients: the signed bundle (CSV, PDF dossier, manifest, Merkle root of
//! the signatures' commitments, Ed25519 signature), its offline verification, the record of
//! deliveries, and signer receipts with inclusion proofs.
//!
//! | file | what |
//! | --- | --- |
//! | [`merkle`] | the Merkle tree over commitments, inclusion proofs |
//! | [`signing_key`] | the instance's Ed25519 key, created on first use |
//! | [`manifest`] | `manifest.json`: what the bundle holds |
//! | [`bundle`] | writing the zip and recording the delivery |
//! | [`record`] | the `deliveries` and `delivery_leaves` tables |
//! | [`verify`] | checking a bundle or an inclusion proof offline |
//! | [`key_url`] | fetching an instance's published key over HTTPS for `verify --key-url` |
//! | [`command`] | the command line (`undersign deliver`, `verify`) |

pub mod bundle;
pub mod command;
pub mod csv_reader;
pub mod key_url;
pub mod manifest;
pub mod merkle;
pub mod record;
pub mod signing_key;
pub mod verify;
