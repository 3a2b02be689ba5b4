//! One kameo actor per index, owning its [`Store`]. The actor never blocks: each job runs on
//! tokio's blocking pool with a clone of the store handle, so searches and writes to one index
//! proceed concurrently (and concurrent writes meet in the store's group commit). In-flight jobs
//! are bounded by a semaphore: past it, requests get 429. A job that panics makes the actor
//! close and reopen its store, which recovers from its WAL; other indexes are unaffected.

use std::path::PathBuf;
use std::sync::Arc;

use cameodb_storage::{Store, StoreConfig, StoreError};
use kameo::Actor;
use kameo::actor::{ActorRef, Spawn};
use kameo::error::SendError;
use kameo::message::{Context, Message};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::{error, info};

use crate::error::ApiError;

/// A unit of blocking work against the store.
type Job = Box<dyn FnOnce(&Store) + Send + 'static>;

/// The actor's state.
pub struct IndexActor {
    /// Where the store lives, to reopen it after a panic.
    dir: PathBuf,
    /// How to open it.
    config: StoreConfig,
    /// The open store; replaced on restart (`None` only while reopening, when no message is
    /// handled anyway, or after a failed reopen).
    store: Option<Arc<Store>>,
    /// Our own address, so a panicking job can ask for a restart.
    me: ActorRef<IndexActor>,
}

impl Actor for IndexActor {
    type Args = (PathBuf, StoreConfig);
    type Error = StoreError;

    async fn on_start((dir, config): Self::Args, me: ActorRef<Self>) -> Result<Self, StoreError> {
        let store = open_blocking(dir.clone(), config.clone()).await?;
        Ok(IndexActor {
            dir,
            config,
            store: Some(store),
            me,
        })
    }
}

async fn open_blocking(dir: PathBuf, config: StoreConfig) -> Result<Arc<Store>, StoreError> {
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&dir, config)?;
        let report = store.recovery_report();
        info!(dir = %dir.display(), replayed = report.replayed, rebuilt = ?report.rebuilt, documents = report.documents, "index store opened");
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
        let task = tokio::task::spawn_blocking(move || job(&store));
        tokio::spawn(async move {
            if let Err(err) = task.await
                && err.is_panic()
            {
                error!("index job panicked; restarting the store from its wal");
                let _ = me.tell(Restart).await;
            }
        });
    }
}

impl Message<Restart> for IndexActor {
    type Reply = Result<(), StoreError>;

    async fn handle(&mut self, _: Restart, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let Some(old) = self.store.take() else {
            return Ok(());
        };
        // Close, then wait for in-flight jobs to let go of the old store: its files stay locked
        // until the last handle is dropped.
        tokio::task::spawn_blocking(move || {
            let _ = old.close();
            let mut old = old;
            for _ in 0..600 {
                match Arc::try_unwrap(old) {
                    Ok(store) => {
                        drop(store);
                        return;
                    }
                    Err(still_shared) => old = still_shared,
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            error!("old store still in use after 30 s; reopening anyway");
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?;
        match open_blocking(self.dir.clone(), self.config.clone()).await {
            Ok(store) => {
                self.store = Some(store);
                info!(dir = %self.dir.display(), "index store restarted after a panic");
                Ok(())
            }
            Err(err) => {
                error!(error = %err, "index store failed to reopen; the index answers errors until restarted");
                Err(err)
            }
        }
    }
}

impl Message<Close> for IndexActor {
    type Reply = Result<(), StoreError>;

    async fn handle(&mut self, _: Close, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let result = match self.store.take() {
            Some(store) => tokio::task::spawn_blocking(move || store.close())
                .await
                .map_err(|e| StoreError::Io(e.to_string()))?,
            None => Ok(()),
        };
        ctx.actor_ref().kill();
        result
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
        dir: PathBuf,
        config: StoreConfig,
        max_in_flight: usize,
    ) -> Result<Shard, ApiError> {
        let actor = IndexActor::spawn_with_mailbox(
            (dir, config),
            kameo::mailbox::bounded(max_in_flight.max(1)),
        );
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
        let job: Job = Box::new(move |store: &Store| {
            let _permit = permit;
            let _ = tx.send(job(store));
        });
        match self.actor.tell(Exec(job)).try_send() {
            Ok(()) => {}
            Err(SendError::MailboxFull(_)) => {
                return Err(ApiError::rejected(
                    "rejected execution: index queue is full",
                ));
            }
            Err(err) => {
                return Err(ApiError::internal(format!(
                    "index actor unavailable: {err}"
                )));
            }
        }
        rx.await
            .map_err(|_| ApiError::internal("the index job failed; the store is being recovered"))
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
