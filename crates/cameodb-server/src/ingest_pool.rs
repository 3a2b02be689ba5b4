//! Low-priority threads for the CPU-heavy half of ingest that happens outside the store:
//! parsing `_bulk` bodies and rendering their answers. On the async workers it would stall
//! every other request; on the shared blocking pool it would compete at equal priority with
//! searches and gets. Here it runs at the store's background nice value, so reads come first.

use std::panic::AssertUnwindSafe;

use crossbeam_channel::{Sender, unbounded};
use tracing::error;

use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of lowered-priority threads; they exit when the pool is dropped.
pub struct IngestPool {
    /// Jobs for the threads.
    jobs: Sender<Job>,
}

impl IngestPool {
    /// `threads` threads at nice value `nice`.
    pub fn new(threads: usize, nice: i32) -> std::io::Result<IngestPool> {
        let (jobs, inbox) = unbounded::<Job>();
        for n in 0..threads.max(1) {
            let inbox = inbox.clone();
            std::thread::Builder::new()
                .name(format!("cameodb-ingest-{n}"))
                .spawn(move || {
                    cameodb_storage::priority::lower_current_thread(nice);
                    while let Ok(job) = inbox.recv() {
                        job();
                    }
                })?;
        }
        Ok(IngestPool { jobs })
    }

    /// Runs `work` on the pool and waits for its result without blocking the async runtime.
    /// A panic in `work` fails only this request.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // What the work allocates on the pool's thread is the request's.
        let account = cameodb_memory::current();
        let job: Job = Box::new(move || {
            let outcome = cameodb_memory::run_in(account.as_ref(), || {
                std::panic::catch_unwind(AssertUnwindSafe(work))
            });
            let _ = reply.send(outcome);
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::internal("ingest pool is gone"))?;
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => {
                error!("an ingest job panicked; answering 500");
                Err(ApiError::internal("ingest job panicked"))
            }
            Err(_) => Err(ApiError::internal("ingest pool dropped the job")),
        }
    }
}
