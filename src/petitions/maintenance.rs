//! The maintenance task: every few seconds (a minute by default) it closes the open petitions
//! whose closing date has passed, so the database says what the public pages already show.
//! It runs in every instance; [`queries::close_expired`] is safe to run concurrently.

use std::time::Duration;

use tokio::sync::watch;

use super::queries;
use crate::core::clock::now;
use crate::db::DbPool;

/// Runs until `stop` turns true.
pub async fn run(pool: DbPool, interval: Duration, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let pool = pool.clone();
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let mut conn = pool.get()?;
            Ok(queries::close_expired(&mut conn, now())?)
        })
        .await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(closed)) => {
                log::info!("maintenance: closed {closed} petition(s) past their closing date")
            }
            Ok(Err(error)) => log::warn!("maintenance: {error:#}"),
            Err(error) => log::warn!("maintenance: the task failed: {error}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
