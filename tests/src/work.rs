//! Stage outcomes written as a worker writes them (`store::work`), for tests that need a job in
//! a given state without running a worker, and the check that a job's counters agree with its
//! rows.

use domain::{job::ErrorClass, message::StageMessage};
use store::work::{self, Change, StageResult};
use uuid::Uuid;

use crate::TestApp;

/// A stage's answer as the worker records it (10 input and 2 output tokens, 8 and 2 billed,
/// priced at the default price of its model); `passed` is the filter's verdict.
pub fn stage_answer(passed: bool) -> StageResult {
    StageResult {
        model: "command-a-vision-07-2025".into(),
        output_text: "{\"animal\": true}".into(),
        output_json: Some(serde_json::json!({"animal": true})),
        passed,
        filter_reason: (!passed).then(|| "no animal".to_string()),
        finish_reason: Some("COMPLETE".into()),
        input_tokens: 10,
        output_tokens: 2,
        billed_input_tokens: 8,
        billed_output_tokens: 2,
        latency_ms: 5,
        cost_usd: settings::PriceTable::default()
            .for_model("command-a-vision-07-2025")
            .cost_usd(8, 2),
    }
}

impl TestApp {
    /// Takes the `count` stage messages waiting on this test's stage queue (so no worker gets
    /// them), asserting that there were that many.
    pub async fn take_stage_messages(&self, count: usize) -> Vec<StageMessage> {
        let messages: Vec<StageMessage> = self
            .drain_stage_queue(count)
            .await
            .into_iter()
            .map(|(body, _)| {
                StageMessage::decode(&serde_json::to_vec(&body).expect("JSON"))
                    .expect("a stage message")
            })
            .collect();
        assert_eq!(messages.len(), count, "stage messages queued");
        messages
    }

    /// Records a passing answer at the message's stage, as a worker would.
    pub async fn record_answer(&self, message: StageMessage, last_stage: bool) {
        let found = work::load(&self.db, &[message])
            .await
            .expect("load the item")
            .remove(0);
        let applied = work::apply(
            &self.db,
            &[Change::Record {
                message,
                image_id: found.expect("the item exists").image_id,
                result: stage_answer(true),
                last_stage,
            }],
        )
        .await
        .expect("write the answer");
        assert_eq!(applied.events.len(), 1, "the outcome was written");
    }

    /// Fails the messages' items at their stages, as a worker would.
    pub async fn fail_items(&self, messages: &[StageMessage], class: ErrorClass, reason: &str) {
        let changes: Vec<Change> = messages
            .iter()
            .map(|&message| Change::Fail {
                message,
                class,
                reason: reason.into(),
            })
            .collect();
        let applied = work::apply(&self.db, &changes)
            .await
            .expect("write the failures");
        assert!(!applied.events.is_empty(), "the failures were written");
    }

    /// Counters that disagree with the rows they count: the job's item counters against its
    /// items, and each stage's counters against its results and the items that failed there.
    pub async fn inconsistent_counters(&self, job: Uuid) -> i64 {
        let jobs = self
            .query_i64(&format!(
                r#"SELECT count(*) FROM jobs j, LATERAL (
                   SELECT count(*) AS total,
                          count(*) FILTER (WHERE status = 'pending') AS pending,
                          count(*) FILTER (WHERE status = 'running') AS running,
                          count(*) FILTER (WHERE status = 'passed') AS passed,
                          count(*) FILTER (WHERE status = 'filtered_out') AS filtered_out,
                          count(*) FILTER (WHERE status = 'failed') AS failed,
                          count(*) FILTER (WHERE status = 'cancelled') AS cancelled
                   FROM job_items i WHERE i.job_id = j.id) c
               WHERE j.id = '{job}' AND (j.total_items <> c.total OR j.pending_items <> c.pending
                   OR j.running_items <> c.running OR j.passed_items <> c.passed
                   OR j.filtered_out_items <> c.filtered_out OR j.failed_items <> c.failed
                   OR j.cancelled_items <> c.cancelled)"#
            ))
            .await;
        let stages = self
            .query_i64(&format!(
                r#"SELECT count(*) FROM job_stage_stats s,
                   LATERAL (SELECT count(*) AS results,
                                   count(*) FILTER (WHERE r.passed) AS passed,
                                   count(*) FILTER (WHERE NOT r.passed) AS filtered_out
                            FROM job_results r
                            WHERE r.job_id = s.job_id AND r.stage_index = s.stage_index) r,
                   LATERAL (SELECT count(*) AS failed FROM job_items i
                            WHERE i.job_id = s.job_id AND i.status = 'failed'
                              AND i.current_stage = s.stage_index) f
               WHERE s.job_id = '{job}' AND (s.passed <> r.passed
                   OR s.filtered_out <> r.filtered_out OR s.failed <> f.failed
                   OR s.processed <> r.results + f.failed)"#
            ))
            .await;
        jobs + stages
    }
}
