//! Email: the durable outbox, the worker that drains it, message building and transports.

pub mod messages;
pub mod outbox;
pub mod transport;
pub mod worker;
