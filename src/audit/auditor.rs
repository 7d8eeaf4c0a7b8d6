//! [`Auditor`]: the chain, the bounded queue and the writer thread.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::checkpoint::Checkpoints;
use super::error::{AuditError, ErrorKind};
use super::fingerprint::{FingerprintKey, hex};
use super::record::{GENESIS, body_of, seal};
use super::sink::{ChainHead, SealedRecord, Sink};
use super::time::{format_micros, now_micros};

/// The default queue capacity, in records.
pub const DEFAULT_QUEUE: usize = 8192;

/// How long the writer waits for work before calling [`Sink::tick`].
const TICK: Duration = Duration::from_millis(10);

/// The most records written between two commits.
const MAX_BATCH: usize = 4096;

/// Writes the audit log: one record per request, chained, through a bounded queue to a
/// writer thread that owns the [`Sink`].
///
/// The [`PrivacyRouterLayer`](crate::middleware::PrivacyRouterLayer) holds one
/// (`.audit(auditor)`). For each request it builds the record on the request's task and
/// queues it; the writer thread gives it the next `seq`, the time, `prev` and `hash`,
/// appends it and commits the batch (with [`FileSink`](super::FileSink)'s default
/// durability, an `fdatasync`), then releases the request. Only then is anything
/// forwarded. A blocked request's record is queued too, but the 403 does not wait for it.
///
/// # Backpressure and failure
///
/// The queue holds [`DEFAULT_QUEUE`] records (see [`with_queue`](Auditor::with_queue)).
/// When it is full, or the sink fails to append or commit, the request is not forwarded
/// where its decision said: it gets its team's `on_error` (`route_local` or `block`), and
/// the failure is counted ([`AuditStats`]). Nothing is dropped silently. After a sink
/// failure the writer re-reads the sink's tail ([`Sink::recover`]) before writing again,
/// so the chain resumes from what is really stored.
///
/// Rejected alternative: waiting for queue space. It turns a slow disk into unbounded
/// latency for every request, hides the fault, and holds memory for every waiting body;
/// failing closed at once is visible (counters, `on_error` responses) and bounded.
///
/// # Checkpoints
///
/// With [`AuditorBuilder::checkpoints`], the writer also appends Ed25519-signed
/// checkpoint records (every N records, every T, and at shutdown); see [`Checkpoints`].
///
/// # Cloning
///
/// Clones share the queue, the writer and the counters. When the last clone is dropped
/// the writer drains the queue, closes the sink and stops (the drop waits for it).
///
/// ```
/// use privacy_router::audit::{Auditor, FingerprintKey, MemorySink};
///
/// let sink = MemorySink::new();
/// let auditor = Auditor::new(sink.clone(), FingerprintKey::from_bytes(vec![9; 32])?);
/// assert_eq!(auditor.stats().written, 0);
/// auditor.shutdown()?;
/// # Ok::<(), privacy_router::audit::AuditError>(())
/// ```
#[derive(Clone)]
pub struct Auditor {
    shared: Arc<Shared>,
}

struct Shared {
    tx: RwLock<Option<SyncSender<Msg>>>,
    key: FingerprintKey,
    written: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    queued: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    ids: AtomicU64,
}

/// Counters since the auditor started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditStats {
    /// Records written and committed.
    pub written: u64,
    /// Records the sink failed to write or commit (their requests got `on_error`).
    pub failed: u64,
    /// Records refused because the queue was full or the auditor was shut down (their
    /// requests got `on_error`).
    pub rejected: u64,
    /// Records waiting in the queue for the writer now (the proxy's "audit queue depth").
    pub queued: u64,
}

/// Configures an [`Auditor`]; made by [`Auditor::builder`].
#[derive(Debug)]
pub struct AuditorBuilder<S> {
    sink: S,
    key: FingerprintKey,
    capacity: usize,
    checkpoints: Option<Checkpoints>,
}

impl<S: Sink> AuditorBuilder<S> {
    /// The queue capacity in records (default [`DEFAULT_QUEUE`], at least 1).
    pub fn queue(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Sign the chain head with these [`Checkpoints`].
    pub fn checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Starts the writer thread.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn start(self) -> Auditor {
        let (tx, rx) = mpsc::sync_channel(self.capacity);
        let shared = Arc::new(Shared {
            tx: RwLock::new(Some(tx)),
            key: self.key,
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            thread: Mutex::new(None),
            ids: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&shared);
        let (sink, checkpoints) = (self.sink, self.checkpoints);
        let handle = std::thread::Builder::new()
            .name("privacy-router-audit".into())
            .spawn(move || {
                let writer = Writer::new(sink, weak.clone(), checkpoints);
                let run =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run(&rx)));
                if run.is_err() {
                    // The writer died (a bug, or a sink that panicked). Nothing more will
                    // be written: refuse new records, and fail every record still queued so
                    // that its request gets `on_error` instead of waiting forever. Records
                    // the writer held already failed when it was dropped.
                    if let Some(shared) = weak.upgrade() {
                        *shared.tx.write().unwrap_or_else(PoisonError::into_inner) = None;
                    }
                    while let Ok(msg) = rx.try_recv() {
                        match msg {
                            Msg::Record { ack: Some(ack), .. } => {
                                ack.complete(Err(AuditError::new(ErrorKind::WriterGone)));
                            }
                            Msg::Record { ack: None, .. } => {}
                            Msg::Flush(reply) => {
                                let _ = reply.send(Err(AuditError::new(ErrorKind::WriterGone)));
                            }
                        }
                    }
                }
            })
            .expect("start the audit writer thread");
        *shared.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        Auditor { shared }
    }
}

enum Msg {
    Record {
        body: Vec<u8>,
        ack: Option<Arc<Ack>>,
    },
    Flush(SyncSender<Result<(), AuditError>>),
}

impl Auditor {
    /// Starts an auditor writing to `sink`, fingerprinting with `key`, with a queue of
    /// [`DEFAULT_QUEUE`] records and no checkpoints. The sink is opened by the writer
    /// thread on its first batch; call [`flush`](Auditor::flush) to open it now and see
    /// whether it works.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn new(sink: impl Sink, key: FingerprintKey) -> Auditor {
        Auditor::builder(sink, key).start()
    }

    /// As [`new`](Auditor::new), with a queue of `capacity` records (at least 1).
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn with_queue(sink: impl Sink, key: FingerprintKey, capacity: usize) -> Auditor {
        Auditor::builder(sink, key).queue(capacity).start()
    }

    /// A builder, for the queue size and signed checkpoints.
    ///
    /// ```
    /// use privacy_router::audit::{Auditor, Checkpoints, FingerprintKey, MemorySink};
    ///
    /// let auditor = Auditor::builder(MemorySink::new(), FingerprintKey::from_bytes(vec![1; 32])?)
    ///     .queue(1024)
    ///     .checkpoints(Checkpoints::from_seed([7; 32]).every_records(100))
    ///     .start();
    /// # auditor.shutdown()?;
    /// # Ok::<(), privacy_router::audit::AuditError>(())
    /// ```
    pub fn builder<S: Sink>(sink: S, key: FingerprintKey) -> AuditorBuilder<S> {
        AuditorBuilder {
            sink,
            key,
            capacity: DEFAULT_QUEUE,
            checkpoints: None,
        }
    }

    /// The fingerprint key.
    pub fn key(&self) -> &FingerprintKey {
        &self.shared.key
    }

    /// Counters since start.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            written: self.shared.written.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            queued: self.shared.queued.load(Ordering::Relaxed),
        }
    }

    /// Waits until every record queued before this call is written and committed, and
    /// the sink synced whatever its durability mode defers. Blocks the calling thread
    /// (from async code, use `spawn_blocking`).
    ///
    /// # Errors
    ///
    /// The sink failed, or the auditor is shut down.
    pub fn flush(&self) -> Result<(), AuditError> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let guard = self
                .shared
                .tx
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(queue) = guard.as_ref() else {
                return Err(AuditError::new(ErrorKind::Closed));
            };
            // Waits for queue space: a flush is a barrier, not a request.
            queue
                .send(Msg::Flush(tx))
                .map_err(|_| AuditError::new(ErrorKind::WriterGone))?;
        }
        rx.recv()
            .unwrap_or_else(|_| Err(AuditError::new(ErrorKind::WriterGone)))
    }

    /// Flushes, then stops the writer and closes the sink. Later requests get `on_error`
    /// (counted as rejected). Clones see the shutdown too. Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// The final flush or close failed.
    pub fn shutdown(&self) -> Result<(), AuditError> {
        let flushed = self.flush();
        self.shared.stop();
        match flushed {
            Err(e) if e.kind() == ErrorKind::Closed => Ok(()),
            other => other,
        }
    }

    /// Queues a record body (see `record::seal`). With `wait`, returns the future that
    /// resolves once the record is committed; without, failures are only counted.
    pub(crate) fn submit(&self, body: Vec<u8>, wait: bool) -> Option<AuditWait> {
        let ack = wait.then(|| Arc::new(Ack::default()));
        let result = {
            let guard = self
                .shared
                .tx
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match guard.as_ref() {
                None => Err(ErrorKind::Closed),
                Some(queue) => queue
                    .try_send(Msg::Record {
                        body,
                        ack: ack.clone(),
                    })
                    .map_err(|e| match e {
                        TrySendError::Full(_) => ErrorKind::QueueFull,
                        TrySendError::Disconnected(_) => ErrorKind::WriterGone,
                    }),
            }
        };
        if result.is_ok() {
            self.shared.queued.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(kind) = result {
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
            if let Some(ack) = &ack {
                ack.complete(Err(AuditError::new(kind)));
            }
        }
        ack.map(|ack| AuditWait { ack })
    }

    /// A new request id: 32 hex digits of SHA-256 over the process id, a counter and the
    /// time. Unique within and (with overwhelming probability) across processes.
    pub(crate) fn new_request_id(&self) -> String {
        let n = self.shared.ids.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(std::process::id().to_le_bytes());
        h.update(n.to_le_bytes());
        h.update(now_micros().to_le_bytes());
        h.update(self.shared.key.id().as_bytes());
        hex(&h.finalize()[..16])
    }
}

impl Shared {
    fn stop(&self) {
        let tx = self
            .tx
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(tx);
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("key", &self.shared.key)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The writer thread's side.
struct Writer<S> {
    sink: S,
    shared: std::sync::Weak<Shared>,
    head: Option<ChainHead>,
    needs_recover: bool,
    last_time: i64,
    /// Records appended since the last commit: their acks, and whether each is a
    /// request's record (counted in the stats) or the writer's own.
    pending: Vec<(Option<Arc<Ack>>, bool)>,
    /// A sink failure in this batch: everything pending fails with it.
    broken: Option<AuditError>,
    checkpoints: Option<Checkpoints>,
    /// Records since the last checkpoint, and when it was.
    unsigned: u64,
    last_checkpoint: Instant,
}

impl<S: Sink> Writer<S> {
    fn new(
        sink: S,
        shared: std::sync::Weak<Shared>,
        checkpoints: Option<Checkpoints>,
    ) -> Writer<S> {
        Writer {
            sink,
            shared,
            head: None,
            needs_recover: true,
            last_time: 0,
            pending: Vec::new(),
            broken: None,
            checkpoints,
            unsigned: 0,
            last_checkpoint: Instant::now(),
        }
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            let first = match rx.recv_timeout(TICK) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    if self.checkpoint_due(false) {
                        self.checkpoint();
                        let _ = self.commit();
                    }
                    if !self.needs_recover && self.sink.tick().is_err() {
                        self.needs_recover = true;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Handle each message as it is taken from the queue (no local batch that a
            // panic would drop with its acks), up to MAX_BATCH before one commit.
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(msg) = next.take() {
                taken += 1;
                match msg {
                    Msg::Record { body, ack } => {
                        if let Some(shared) = self.shared.upgrade() {
                            shared.queued.fetch_sub(1, Ordering::Relaxed);
                        }
                        self.append(&body, ack, true);
                        if self.checkpoint_due(false) {
                            self.checkpoint();
                        }
                    }
                    Msg::Flush(reply) => {
                        let r = self.commit();
                        let _ = reply.send(r);
                    }
                }
                if taken < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            let _ = self.commit();
        }
        let _ = self.commit();
        // The end of the log is signed at shutdown.
        if self.checkpoint_due(true) {
            self.checkpoint();
            let _ = self.commit();
        }
        if !self.needs_recover {
            let _ = self.sink.close();
        }
    }

    /// Whether a checkpoint is due: `every_records` unsigned records, or `every` passed
    /// with at least one, or (`closing`) any unsigned record at all.
    fn checkpoint_due(&self, closing: bool) -> bool {
        let Some(cp) = &self.checkpoints else {
            return false;
        };
        if self.unsigned == 0 || self.needs_recover || self.broken.is_some() {
            return false;
        }
        closing
            || self.unsigned >= cp.every_records
            || cp
                .every
                .is_some_and(|d| self.last_checkpoint.elapsed() >= d)
    }

    /// Appends a checkpoint signing the current head.
    fn checkpoint(&mut self) {
        let (Some(cp), Some(head)) = (&self.checkpoints, &self.head) else {
            return;
        };
        #[derive(serde::Serialize)]
        struct Checkpoint<'a> {
            event: &'a str,
            signed_seq: u64,
            signed_hash: &'a str,
            key_id: &'a str,
            sig: String,
        }
        let body = body_of(&Checkpoint {
            event: "checkpoint",
            signed_seq: head.seq,
            signed_hash: &head.hash,
            key_id: cp.key_id(),
            sig: cp.sign(head.seq, &head.hash),
        });
        self.append(&body, None, false);
        self.unsigned = 0;
        self.last_checkpoint = Instant::now();
    }

    fn ensure_recovered(&mut self) -> Result<(), AuditError> {
        if !self.needs_recover {
            return Ok(());
        }
        let recovery = self.sink.recover()?;
        self.head = recovery.head;
        self.needs_recover = false;
        if let Some((bytes, sha)) = recovery.truncated {
            #[derive(serde::Serialize)]
            struct Recovered<'a> {
                event: &'a str,
                truncated_bytes: u64,
                truncated_sha256: &'a str,
            }
            let body = body_of(&Recovered {
                event: "recovered",
                truncated_bytes: bytes,
                truncated_sha256: &sha,
            });
            self.append(&body, None, false);
        }
        Ok(())
    }

    fn append(&mut self, body: &[u8], ack: Option<Arc<Ack>>, request: bool) {
        if self.broken.is_none()
            && let Err(e) = self.ensure_recovered()
        {
            self.broken = Some(e);
        }
        if self.broken.is_some() {
            self.pending.push((ack, request));
            return;
        }
        let seq = self.head.as_ref().map_or(1, |h| h.seq + 1);
        let prev = self.head.as_ref().map_or(GENESIS, |h| h.hash.as_str());
        let time = now_micros().max(self.last_time);
        let (line, hash) = seal(seq, prev, &format_micros(time), body);
        let record = SealedRecord {
            line: &line,
            seq,
            time_micros: time,
        };
        // Pending first: if the sink panics, dropping the writer fails this record too.
        self.pending.push((ack, request));
        match self.sink.append(&record) {
            Ok(()) => {
                self.last_time = time;
                self.head = Some(ChainHead { seq, hash });
                self.unsigned += 1;
            }
            Err(e) => self.broken = Some(e),
        }
    }

    /// Commits the batch and releases its requests.
    fn commit(&mut self) -> Result<(), AuditError> {
        let result = match self.broken.take() {
            Some(e) => Err(e),
            None if self.needs_recover => self.ensure_recovered().and_then(|()| self.sink.commit()),
            None => self.sink.commit(),
        };
        if result.is_err() {
            self.needs_recover = true;
        }
        let n = self.pending.iter().filter(|(_, request)| *request).count() as u64;
        if let Some(shared) = self.shared.upgrade() {
            let counter = if result.is_ok() {
                &shared.written
            } else {
                &shared.failed
            };
            counter.fetch_add(n, Ordering::Relaxed);
        }
        for ack in self.pending.drain(..).filter_map(|(ack, _)| ack) {
            ack.complete(result.clone());
        }
        result
    }
}

/// A one-shot completion shared by the writer and a waiting request.
impl<S> Drop for Writer<S> {
    /// Records appended but not committed when the writer goes away (it panicked) fail,
    /// so their requests get `on_error` instead of waiting forever.
    fn drop(&mut self) {
        for (ack, _) in self.pending.drain(..) {
            if let Some(ack) = ack {
                ack.complete_if_pending(Err(AuditError::new(ErrorKind::WriterGone)));
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Ack {
    state: Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    done: Option<Result<(), AuditError>>,
    waker: Option<Waker>,
}

impl Ack {
    fn complete_if_pending(&self, result: Result<(), AuditError>) {
        let pending = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .done
            .is_none();
        if pending {
            self.complete(result);
        }
    }

    fn complete(&self, result: Result<(), AuditError>) {
        let waker = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.done = Some(result);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Resolves once a request's record is committed (or failed).
pub(crate) struct AuditWait {
    ack: Arc<Ack>,
}

impl Future for AuditWait {
    type Output = Result<(), AuditError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self
            .ack
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match s.done.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
