//! The headers of running jobs (pipeline snapshot, priority, stage filters compiled): they
//! never change, so each worker reads a job's header once and compiles its filters once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use domain::{
    filter::{CompiledFilter, FilterError},
    pipeline::StageSpec,
};
use sea_orm::DatabaseConnection;
use store::work::{self, JobHeader};
use uuid::Uuid;

/// Headers kept before the cache starts over (a few hundred bytes to a few KB each).
const CAPACITY: usize = 4096;

/// A job's header with each stage's filter compiled.
#[derive(Debug)]
pub struct Job {
    pub header: JobHeader,
    /// Per stage: its compiled filter, if it has one.
    filters: Vec<Option<Result<CompiledFilter, FilterError>>>,
}

impl Job {
    pub fn new(header: JobHeader) -> Self {
        let filters = header
            .snapshot
            .stages
            .iter()
            .map(|stage| stage.filter.as_ref().map(|filter| filter.compile()))
            .collect();
        Self { header, filters }
    }

    /// The stage at `index`, if the pipeline has one.
    pub fn stage(&self, index: u32) -> Option<&StageSpec> {
        self.header.snapshot.stages.get(index as usize)
    }

    /// Whether `index` is the pipeline's last stage (or past it).
    pub fn is_last_stage(&self, index: u32) -> bool {
        index as usize + 1 >= self.header.snapshot.stages.len()
    }

    /// The compiled filter of the stage at `index`, if it has one. Filters are validated when a
    /// pipeline is created, so an error here means a snapshot that no longer compiles.
    pub fn filter(&self, index: u32) -> Option<&Result<CompiledFilter, FilterError>> {
        self.filters.get(index as usize).and_then(Option::as_ref)
    }
}

/// The jobs a worker has seen, by id.
#[derive(Default)]
pub struct JobCache {
    jobs: Mutex<HashMap<Uuid, Arc<Job>>>,
}

impl JobCache {
    /// The jobs `job_ids` names, reading the ones not cached from the database.
    pub async fn get_all(
        &self,
        db: &DatabaseConnection,
        job_ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Arc<Job>>, store::StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cached = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            for id in job_ids {
                match cached.get(&id) {
                    Some(job) => {
                        found.insert(id, job.clone());
                    }
                    None if !missing.contains(&id) => missing.push(id),
                    None => {}
                }
            }
        }
        if !missing.is_empty() {
            // Compiled outside the lock: a filter's regexes take a while to build.
            let loaded: Vec<Arc<Job>> = work::job_headers(db, &missing)
                .await?
                .into_iter()
                .map(|header| Arc::new(Job::new(header)))
                .collect();
            let mut cached = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if cached.len() + loaded.len() > CAPACITY {
                cached.clear();
            }
            for job in loaded {
                cached.insert(job.header.job_id, job.clone());
                found.insert(job.header.job_id, job);
            }
        }
        Ok(found)
    }
}
