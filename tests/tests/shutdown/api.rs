//! The api under a stream of requests and with event streams open gets SIGTERM: `/readyz`
//! answers 503 at once, the event streams end cleanly within a second or two, every request
//! answered meanwhile is a 2xx (none is cut off with a 5xx), and the process exits 0 well
//! within its grace period.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use system_tests::{
    EventReader, RUN_TIMEOUT, TestApp, distinct_images, eventually,
    process::{ServiceProcess, base_config, note},
    two_stages,
};

use crate::{free_port, terminate_and_expect_clean_exit};

/// `http.shutdown_delay_seconds`: readiness fails this long before the listener closes.
const DELAY: Duration = Duration::from_secs(1);
/// `http.shutdown_grace_seconds`.
const GRACE: Duration = Duration::from_secs(10);
/// Event streams must end this soon after SIGTERM.
const STREAMS_END_WITHIN: Duration = Duration::from_secs(2);
/// Clients sending requests in a loop.
const CLIENTS: usize = 6;

/// What one request of the load saw.
#[derive(Debug)]
enum Outcome {
    Status(u16),
    /// No answer: the connection was refused or closed before a response (after the
    /// listener closed); the client tries another replica.
    NoAnswer,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_api_fails_readiness_ends_streams_answers_what_it_accepted_and_exits_0() {
    let app = TestApp::spawn().await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(3)).await;
    // No worker runs: the job stays unfinished, so its event stream stays open.
    let job = app.submit_job(pipeline, library).await;

    let port = free_port();
    let config = format!(
        "{}
[http]
host = \"127.0.0.1\"
port = {port}
workers = 2
shutdown_delay_seconds = {}
shutdown_grace_seconds = {}
",
        base_config(&app.settings),
        DELAY.as_secs(),
        GRACE.as_secs()
    );
    let mut api = ServiceProcess::start_binary("api", "api", &["serve"], &config);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(RUN_TIMEOUT, "the api process ready", || async {
        let response = client.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;

    // Two event streams, each past its first frame.
    let mut streams = Vec::new();
    for path in [format!("/api/jobs/{job}/events"), "/api/events".to_string()] {
        let response = client
            .get(format!("{base}{path}"))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        let mut reader = EventReader::new(response);
        tokio::time::timeout(Duration::from_secs(10), reader.next_frame())
            .await
            .expect("the first frame in time")
            .expect("a first frame");
        streams.push((path, reader));
    }

    // Clients sending requests back to back until the process has exited.
    let exited = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let load: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, exited, key) = (reqwest::Client::new(), exited.clone(), app.key.clone());
            let answered = answered.clone();
            let url = format!("{base}/api/jobs/{job}");
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !exited.load(Ordering::SeqCst) {
                    let sent = started.elapsed();
                    let outcome = match client.get(&url).bearer_auth(&key).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            // The whole body, so a response cut short counts as no answer.
                            match response.bytes().await {
                                Ok(_) => {
                                    answered.fetch_add(1, Ordering::SeqCst);
                                    Outcome::Status(status)
                                }
                                Err(_) => Outcome::NoAnswer,
                            }
                        }
                        Err(_) => Outcome::NoAnswer,
                    };
                    let refused = matches!(outcome, Outcome::NoAnswer);
                    seen.push((sent, outcome));
                    if refused {
                        // Nothing listens any more; look again shortly.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                seen
            })
        })
        .collect();
    eventually(Duration::from_secs(10), "the load under way", || async {
        (answered.load(Ordering::SeqCst) >= 10 * CLIENTS).then_some(())
    })
    .await;

    // SIGTERM, with the process's exit awaited alongside the checks below.
    let sigterm_at = started.elapsed();
    let (exit, readiness, ended) = {
        let readiness_client = client.clone();
        let readiness_base = base.clone();
        let readiness = async move {
            // Readiness fails while the server still serves (the shutdown delay).
            let deadline = Instant::now() + DELAY;
            loop {
                if let Ok(response) = readiness_client
                    .get(format!("{readiness_base}/readyz"))
                    .send()
                    .await
                    && response.status() == 503
                {
                    return Some(started.elapsed() - sigterm_at);
                }
                if Instant::now() > deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let ended = async {
            let mut ended = Vec::new();
            for (path, reader) in &mut streams {
                let rest = tokio::time::timeout(STREAMS_END_WITHIN, async {
                    while reader.next_frame().await.is_some() {}
                })
                .await;
                assert!(
                    rest.is_ok(),
                    "{path} still open {STREAMS_END_WITHIN:?} after SIGTERM"
                );
                ended.push((path.clone(), started.elapsed() - sigterm_at));
            }
            ended
        };
        let exit = terminate_and_expect_clean_exit(&mut api, "api", DELAY + GRACE);
        tokio::join!(exit, readiness, ended)
    };
    exited.store(true, Ordering::SeqCst);

    let readiness = readiness.expect("/readyz answered 503 within the shutdown delay");
    note(format!(
        "api: readiness 503 after {readiness:.2?}; streams ended after {ended:?}"
    ));
    assert!(
        exit < DELAY + GRACE / 2,
        "the api exited {exit:?} after SIGTERM: the shutdown waited on something"
    );

    let mut answered_after = 0;
    let mut no_answer = 0;
    let mut total = 0;
    for task in load {
        for (sent, outcome) in task.await.unwrap() {
            total += 1;
            match outcome {
                Outcome::Status(status) => {
                    assert!(
                        (200..300).contains(&status),
                        "a request sent {:?} after SIGTERM answered {status}",
                        sent.checked_sub(sigterm_at)
                    );
                    if sent > sigterm_at {
                        answered_after += 1;
                    }
                }
                Outcome::NoAnswer => {
                    assert!(
                        sent > sigterm_at + readiness,
                        "a request sent before readiness failed got no answer (sent at {sent:?}, SIGTERM at {sigterm_at:?})"
                    );
                    no_answer += 1;
                }
            }
        }
    }
    note(format!(
        "api: {total} requests, {answered_after} answered 2xx after SIGTERM, {no_answer} refused after the listener closed"
    ));
    assert!(
        answered_after > 0,
        "requests kept being answered while readiness failed"
    );
}
