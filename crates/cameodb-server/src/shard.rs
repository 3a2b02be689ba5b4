//! One kameo actor per index, owning its [`Store`]. The actor never blocks: each job runs on
//! tokio's blocking pool with a clone of the store handle, so searches and writes to one index
//! proceed concurrently (and concurrent writes meet in the store's group commit). In-flight jobs
//! are bounded by a semaphore: past it, requests get 429. A job that panics makes the actor fail
//! on purpose; its kameo supervisor restarts it, and the new incarnation reopens the store, which
//! recovers from its WAL. Other indexes are unaffected.

use std::path::PathBuf;
use std::sync::Arc;

use cameodb_storage::{Store, StoreConfig, StoreError};
use kameo::Actor;
use kameo::actor::{ActorRef, Spawn};
use kameo::error::SendError;
use kameo::message::{Context, Message};
use kameo::supervision::{RestartPolicy, SupervisionStrategy};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::{error, info};

use crate::error::ApiError;

/// A unit of blocking work against the store.
type Job = Box<dyn FnOnce(&Store) + Send + 'static>;

/// The actor's state.
pub struct IndexActor {
    /// The open store; replaced on restart (`None` only while reopening, when no message is
    /// handled anyway, or after a failed reopen).
    store: Option<Arc<Store>>,
    /// Our own address, so a panicking job can ask for a restart.
    me: ActorRef<IndexActor>,
}

impl Actor for IndexActor {
    type Args = (PathBuf, StoreConfig);
    type Error = StoreError;

    async fn on_stop(
        &mut self,
        _: kameo::actor::WeakActorRef<Self>,
        _: kameo::error::ActorStopReason,
    ) -> Result<(), StoreError> {
        match self.store.take() {
            Some(store) => release(store).await,
            None => Ok(()),
        }
    }

    async fn on_start((dir, config): Self::Args, me: ActorRef<Self>) -> Result<Self, StoreError> {
        let store = open_blocking(dir.clone(), config.clone()).await?;
        Ok(IndexActor {
            store: Some(store),
            me,
        })
    }
}

async fn open_blocking(dir: PathBuf, config: StoreConfig) -> Result<Arc<Store>, StoreError> {
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        // After a restart the previous incarnation may still be letting go of the files: wait
        // for the lock rather than fail (and exhaust the supervisor's restart budget).
        let mut attempts = 0;
        let store = loop {
            match Store::open(&dir, config.clone()) {
                Err(StoreError::Locked(_)) if attempts < 600 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let report = store.recovery_report();
        info!(dir = %dir.display(), replayed = report.replayed, rebuilt = ?report.rebuilt, documents = report.documents, elapsed_ms = started.elapsed().as_millis() as u64, "index store opened");
        Ok(Arc::new(store))
    })
    .await
    .map_err(|e| StoreError::Io(format!("store open task failed: {e}")))?
}

/// Run a job on the blocking pool.
struct Exec(Job);

/// A job panicked: reopen the store.
struct Restart;

/// Close the store for good (index deletion, shutdown).
struct Close;

impl Message<Exec> for IndexActor {
    type Reply = ();

    async fn handle(&mut self, Exec(job): Exec, _: &mut Context<Self, ()>) {
        // Without a store the job is dropped, and its caller gets an error.
        let Some(store) = self.store.clone() else {
            return;
        };
        let me = self.me.clone();
        if !store.is_healthy() {
            // The store's own writer or indexer thread died: restart it (WAL recovery).
            error!("index store threads are gone; restarting the store");
            let _ = me.tell(Restart).try_send();
            return;
        }
        // Jobs catch their own panics (see `Shard::run`), so nothing here can unwind.
        drop(tokio::task::spawn_blocking(move || job(&store)));
    }
}

impl Message<Restart> for IndexActor {
    type Reply = Result<(), StoreError>;

    /// Fails the actor (an error from a `tell` stops it as panicked), so that the supervisor
    /// restarts it; `on_stop` releases the store first.
    async fn handle(&mut self, _: Restart, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        Err(StoreError::Index(
            "an index job panicked; restarting the store".into(),
        ))
    }
}

/// Closes `store` and waits (up to 30 s) until no in-flight job holds it: its files stay locked
/// until the last handle is dropped, and a reopen needs them.
async fn release(store: Arc<Store>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        let result = store.close();
        let mut store = store;
        for _ in 0..600 {
            match Arc::try_unwrap(store) {
                Ok(store) => {
                    drop(store);
                    return result;
                }
                Err(still_shared) => store = still_shared,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        error!("store still in use after 30 s");
        result
    })
    .await
    .map_err(|e| StoreError::Io(e.to_string()))?
}

impl Message<Close> for IndexActor {
    type Reply = Result<(), StoreError>;

    async fn handle(&mut self, _: Close, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let result = match self.store.take() {
            Some(store) => release(store).await,
            None => Ok(()),
        };
        // A normal stop: the supervisor only restarts actors that failed.
        ctx.stop();
        result
    }
}

/// Supervises the index actors of a node: a failed one (a panicked job) is restarted alone.
pub struct StoreSupervisor;

impl Actor for StoreSupervisor {
    type Args = ();
    type Error = kameo::error::Infallible;

    async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(StoreSupervisor)
    }

    fn supervision_strategy() -> SupervisionStrategy {
        SupervisionStrategy::OneForOne
    }
}

/// A cheap, cloneable handle to an index's actor.
#[derive(Clone)]
pub struct Shard {
    /// The actor.
    actor: ActorRef<IndexActor>,
    /// Bounds in-flight jobs; exhausted means 429.
    permits: Arc<Semaphore>,
}

impl Shard {
    /// Opens the store in `dir` under a new actor.
    pub async fn open(
        supervisor: &ActorRef<StoreSupervisor>,
        dir: PathBuf,
        config: StoreConfig,
        max_in_flight: usize,
    ) -> Result<Shard, ApiError> {
        let actor = IndexActor::supervise(supervisor, (dir, config))
            .restart_policy(RestartPolicy::Transient)
            .restart_limit(10, Duration::from_secs(60))
            .spawn_with_mailbox(kameo::mailbox::bounded(max_in_flight.max(1)))
            .await;
        actor
            .wait_for_startup_result()
            .await
            .map_err(|e| ApiError::internal(format!("index store failed to open: {e}")))?;
        Ok(Shard {
            actor,
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        })
    }

    /// Runs `job` against the store on a blocking thread and returns its result.
    pub async fn run<R, F>(&self, job: F) -> Result<R, ApiError>
    where
        F: FnOnce(&Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let permit: OwnedSemaphorePermit =
            Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
                ApiError::rejected("rejected execution: too many requests in flight for this index")
            })?;
        let (tx, rx) = oneshot::channel();
        // The job runs on a blocking thread; what it allocates is the request's.
        let account = cameodb_memory::current();
        let job: Job = Box::new(move |store: &Store| {
            let _permit = permit;
            let _entered = account.as_ref().map(|account| account.enter());
            // A panic is a bug; it must fail this request only, and say so. The store's state
            // lives in its own threads, which a request job's unwinding cannot touch.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(store)));
            let _ = tx.send(result);
        });
        match self.actor.tell(Exec(job)).try_send() {
            Ok(()) => {}
            Err(SendError::MailboxFull(_)) => {
                return Err(ApiError::rejected(
                    "rejected execution: index queue is full",
                ));
            }
            Err(SendError::ActorRestarting(_)) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable_shards_exception",
                    "the index store is restarting; retry",
                ));
            }
            Err(err) => {
                return Err(ApiError::internal(format!(
                    "index actor unavailable: {err}"
                )));
            }
        }
        match rx.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_panic)) => {
                error!("an index request panicked; answering 500");
                Err(ApiError::internal(
                    "the request failed on an internal error (a bug) and was abandoned; the index and its data are unaffected",
                ))
            }
            // The job never ran: the actor stopped (the store is restarting or closed).
            Err(_) => Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable_shards_exception",
                "the index store stopped before running this request; retry",
            )),
        }
    }

    /// Fails the actor, as if its store had died: the supervisor restarts it (tests only).
    pub async fn fail_actor(&self) {
        let _ = self.actor.tell(Restart).await;
    }

    /// Closes the store and stops the actor.
    pub async fn close(&self) -> Result<(), ApiError> {
        match self.actor.ask(Close).await {
            Ok(()) => Ok(()),
            Err(SendError::HandlerError(err)) => Err(err.into()),
            Err(err) => Err(ApiError::internal(format!("closing index failed: {err}"))),
        }
    }
}

/// Runs `job` on `shard`, flattening its result.
pub async fn run<R, F>(shard: &Shard, job: F) -> Result<R, ApiError>
where
    F: FnOnce(&Store) -> Result<R, ApiError> + Send + 'static,
    R: Send + 'static,
{
    shard.run(job).await?
}
