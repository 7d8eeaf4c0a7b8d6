//! [`PolicyHandle`]: the policy set in force, swapped atomically on reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::diagnostic::Diagnostics;
use super::set::PolicySet;

/// The policy set in force, shared by every request, replaced as a whole on reload.
///
/// A request takes the current set once ([`current`](Self::current)) and keeps that
/// `Arc` until it is done: a reload in the middle of a request changes nothing for it, and
/// no request ever sees half of one version and half of another. A directory that fails
/// to load leaves the last good set in force.
///
/// *Rejected: `arc-swap`.* It makes the read side lock-free, but the read here is one
/// uncontended read lock and an `Arc` clone per request, next to a scan that costs
/// microseconds; a dependency is not worth it. The lock is held only to clone or replace
/// the `Arc`, never while loading or deciding, so a slow reload never blocks requests.
///
/// # Cloning
///
/// Not `Clone`: share it in an `Arc`.
///
/// ```no_run
/// use privacy_router::policy::PolicyHandle;
///
/// let handle = PolicyHandle::load("policies")?;
/// let set = handle.current();           // one request's view
/// let decision = set.evaluate("payments", "refund order 1234");
/// match handle.reload() {               // e.g. on SIGHUP
///     Ok(new) => eprintln!("policies reloaded: {}", new.digest()),
///     Err(problems) => eprintln!("kept the last good policies:\n{problems}"),
/// }
/// # Ok::<(), privacy_router::policy::Diagnostics>(())
/// ```
#[derive(Debug)]
pub struct PolicyHandle {
    dir: PathBuf,
    current: RwLock<Arc<PolicySet>>,
}

impl PolicyHandle {
    /// Loads `dir` and puts the set in force.
    ///
    /// # Errors
    ///
    /// The diagnostics, if the directory does not load.
    pub fn load(dir: impl AsRef<Path>) -> Result<PolicyHandle, Diagnostics> {
        let set = PolicySet::load_dir(dir.as_ref())?;
        Ok(PolicyHandle::new(dir, set))
    }

    /// A handle over an already loaded set; [`reload`](Self::reload) reads `dir`.
    pub fn new(dir: impl AsRef<Path>, set: PolicySet) -> PolicyHandle {
        PolicyHandle {
            dir: dir.as_ref().to_path_buf(),
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The directory reloads read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The set in force now. Keep the `Arc` for the whole request.
    pub fn current(&self) -> Arc<PolicySet> {
        // A panic while holding the lock cannot leave the `Arc` half-written: poisoning
        // carries no meaning here.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Loads the directory again and, if it loads, puts the new set in force.
    ///
    /// # Errors
    ///
    /// The diagnostics of a set that does not load; the last good set stays in force.
    pub fn reload(&self) -> Result<Arc<PolicySet>, Diagnostics> {
        let set = PolicySet::load_dir(&self.dir)?;
        Ok(self.replace(set))
    }

    /// Puts `set` in force and returns it. Requests that already hold the old set keep it.
    pub fn replace(&self, set: PolicySet) -> Arc<PolicySet> {
        let set = Arc::new(set);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&set);
        set
    }
}
