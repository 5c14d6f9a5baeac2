//! Server-sent event streams, read as a browser would.

use std::time::Duration;

use serde_json::Value;

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

/// A `text/event-stream` response read one event at a time, as a browser's `EventSource`
/// would: comments are skipped and frames with only an `id:` move [`EventReader::last_id`].
pub struct EventReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    pub last_id: Option<String>,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        use futures::StreamExt;
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            last_id: None,
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(event) = self.next_frame().await? {
                return Some(event);
            }
        }
    }

    /// The next frame: `Some(None)` for one without data (only an `id:`, or a comment).
    pub async fn next_frame(&mut self) -> Option<Option<ServerEvent>> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_string)
                };
                if let Some(id) = field("id: ") {
                    self.last_id = Some(id);
                }
                return Some(field("data: ").map(|data| ServerEvent {
                    event: field("event: ").unwrap_or_else(|| "message".into()),
                    id: self.last_id.clone().unwrap_or_default(),
                    data: serde_json::from_str(&data).expect("event data is JSON"),
                }));
            }
            let chunk = self.body.next().await?.expect("the stream reads");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until `stop` returns true for one, failing after `timeout`; returns every
    /// event read, the last one included.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut stop: impl FnMut(&ServerEvent) -> bool,
    ) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        let read = async {
            while let Some(event) = self.next().await {
                let done = stop(&event);
                events.push(event);
                if done {
                    return;
                }
            }
            panic!("the stream ended early: {events:?}");
        };
        tokio::time::timeout(timeout, read)
            .await
            .expect("the awaited event in time");
        events
    }

    /// Publishes `event` every 200 ms until this stream receives an event that `accept` takes,
    /// and returns that one. The api binds its event listener in the background at start-up,
    /// so the first publishes may go unheard.
    pub async fn publish_until(
        &mut self,
        publisher: &broker::Publisher,
        event: &domain::event::JobEvent,
        accept: impl Fn(&ServerEvent) -> bool,
    ) -> ServerEvent {
        let publishing = async {
            loop {
                publisher
                    .publish_event(event)
                    .await
                    .expect("publish the event");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let receiving = async {
            while let Some(received) = self.next().await {
                if accept(&received) {
                    return received;
                }
            }
            panic!("the stream ended");
        };
        tokio::time::timeout(crate::RUN_TIMEOUT, async {
            tokio::select! {
                received = receiving => received,
                () = publishing => unreachable!(),
            }
        })
        .await
        .expect("the api hears the published event")
    }
}
