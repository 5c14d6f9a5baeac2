//! Graceful shutdown: the signal that starts it and the flag everything that must react to it
//! (readiness, long-lived responses, background loops) watches.

use std::sync::Arc;

use tokio::sync::watch;

/// Set once when shutdown begins; cheap to clone and to check.
#[derive(Clone, Debug)]
pub struct Shutdown(Arc<watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }

    /// Starts the shutdown (again is harmless).
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    pub fn is_begun(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has begun (at once if it already has). Owns what it needs, so
    /// it can outlive `self`.
    pub fn begun(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.subscribe();
        async move {
            // The sender lives in `self`'s clones; if all are gone, nothing will ever stop.
            if receiver.wait_for(|begun| *begun).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn begun_resolves_for_waiters_before_and_after_the_start() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn(shutdown.begun());
        assert!(!shutdown.is_begun());
        let not_yet = tokio::time::timeout(Duration::from_millis(50), shutdown.begun()).await;
        assert!(not_yet.is_err(), "nothing resolves before the start");
        shutdown.clone().begin();
        assert!(shutdown.is_begun());
        tokio::time::timeout(Duration::from_secs(1), early)
            .await
            .expect("a waiter from before the start resolves")
            .expect("the waiter's task");
        tokio::time::timeout(Duration::from_secs(1), shutdown.begun())
            .await
            .expect("a waiter from after the start resolves at once");
    }
}
