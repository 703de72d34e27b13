//! Replay protection: each act JWT `jti` is accepted once until the token expires.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::error::ReplayError;

/// Records token ids (`jti`) so that each is accepted once.
///
/// An implementation must check and record in one atomic step, and remember a `jti` at
/// least until `expires_at`. The in-process [`InMemoryReplayGuard`] serves one process; a
/// shared store (Redis) serves several replicas.
#[async_trait]
pub trait ReplayGuard: Send + Sync + fmt::Debug {
    /// Records `jti` until `expires_at`.
    ///
    /// # Errors
    /// [`ReplayError::Replayed`] when `jti` is already recorded and unexpired; any other
    /// error means the check could not be made, and the caller must refuse the token.
    async fn check_and_record(&self, jti: &str, expires_at: SystemTime) -> Result<(), ReplayError>;

    /// Records `jti`, shown by `party` (the agent an act assertion names in `azp`, if any),
    /// until `expires_at`. A store with a size bound bounds each party on its own, so that
    /// one agent cannot use up the room every other agent needs. The default ignores the
    /// party.
    ///
    /// # Errors
    /// As [`ReplayGuard::check_and_record`].
    async fn check_and_record_for(&self, party: Option<&str>, jti: &str, expires_at: SystemTime) -> Result<(), ReplayError> {
        let _ = party;
        self.check_and_record(jti, expires_at).await
    }
}

/// A bounded, thread-safe, in-process [`ReplayGuard`].
///
/// Entries are forgotten once their token expires. The bound is per party (per agent, for
/// act assertions; tokens naming no agent share one): when a party's share is full of
/// unexpired entries, that party's new ones are refused ([`ReplayError::CapacityExceeded`])
/// instead of evicting, because evicting an unexpired `jti` would let that token be
/// replayed, while every other party goes on. At most [`MAX_REPLAY_PARTIES`] parties are
/// held. A `jti` is accepted once whatever party shows it.
///
/// ```
/// # tokio_test_shim::block_on(async {
/// use std::time::{Duration, SystemTime};
/// use dual_auth_core::{InMemoryReplayGuard, ReplayGuard};
///
/// let guard = InMemoryReplayGuard::new(10_000);
/// let exp = SystemTime::now() + Duration::from_secs(60);
/// assert!(guard.check_and_record("jti-1", exp).await.is_ok());
/// assert!(guard.check_and_record("jti-1", exp).await.is_err());
/// # });
/// # mod tokio_test_shim { pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #   tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) } }
/// ```
pub struct InMemoryReplayGuard {
    state: Mutex<ReplayState>,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct ReplayState {
    /// jti → (expiry, party).
    seen: HashMap<String, (SystemTime, String)>,
    by_expiry: BinaryHeap<Reverse<(SystemTime, String)>>,
    /// Unexpired entries per party.
    per_party: HashMap<String, usize>,
}

impl ReplayState {
    fn purge_expired(&mut self, now: SystemTime) {
        while let Some(Reverse((expires_at, _))) = self.by_expiry.peek() {
            if *expires_at > now {
                break;
            }
            if let Some(Reverse((expires_at, jti))) = self.by_expiry.pop() {
                // Remove only if the map still holds this very entry.
                if self.seen.get(&jti).is_some_and(|(at, _)| *at == expires_at)
                    && let Some((_, party)) = self.seen.remove(&jti)
                    && let Some(count) = self.per_party.get_mut(&party)
                {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.per_party.remove(&party);
                    }
                }
            }
        }
    }
}

/// The most parties an [`InMemoryReplayGuard`] holds entries for at once.
pub const MAX_REPLAY_PARTIES: usize = 1_000;

/// The default capacity per party: far above what one agent has verified within a token
/// lifetime.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

impl InMemoryReplayGuard {
    /// A guard holding at most `capacity` unexpired entries per party, on the system clock.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, Arc::new(SystemClock))
    }

    /// A guard on the given clock (for tests).
    pub fn with_clock(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self { state: Mutex::new(ReplayState::default()), capacity: capacity.max(1), clock }
    }

    /// How many entries are held now (expired ones may linger until the next insert).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        // The state stays consistent across a panic in another holder: each step is complete.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for InMemoryReplayGuard {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl fmt::Debug for InMemoryReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryReplayGuard").field("capacity", &self.capacity).field("len", &self.len()).finish()
    }
}

#[async_trait]
impl ReplayGuard for InMemoryReplayGuard {
    async fn check_and_record(&self, jti: &str, expires_at: SystemTime) -> Result<(), ReplayError> {
        self.check_and_record_for(None, jti, expires_at).await
    }

    async fn check_and_record_for(&self, party: Option<&str>, jti: &str, expires_at: SystemTime) -> Result<(), ReplayError> {
        let now = self.clock.now();
        let party = party.unwrap_or_default();
        let mut state = self.lock();
        state.purge_expired(now);
        if let Some((existing, _)) = state.seen.get(jti)
            && *existing > now
        {
            return Err(ReplayError::Replayed);
        }
        let held = state.per_party.get(party).copied();
        if held.unwrap_or(0) >= self.capacity || (held.is_none() && state.per_party.len() >= MAX_REPLAY_PARTIES) {
            return Err(ReplayError::CapacityExceeded { capacity: self.capacity });
        }
        // An expired entry for this jti may linger (purged by expiry order): replace it.
        if let Some((_, old_party)) = state.seen.insert(jti.to_owned(), (expires_at, party.to_owned()))
            && let Some(count) = state.per_party.get_mut(&old_party)
        {
            *count = count.saturating_sub(1);
        }
        *state.per_party.entry(party.to_owned()).or_insert(0) += 1;
        state.by_expiry.push(Reverse((expires_at, jti.to_owned())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn second_use_is_refused_until_expiry_then_forgotten() {
        let clock = ManualClock::new(at(1_000));
        let guard = InMemoryReplayGuard::with_clock(10, Arc::new(clock.clone()));
        guard.check_and_record("a", at(1_060)).await.unwrap();
        assert!(matches!(guard.check_and_record("a", at(1_060)).await, Err(ReplayError::Replayed)));
        clock.set(at(1_059));
        assert!(matches!(guard.check_and_record("a", at(1_060)).await, Err(ReplayError::Replayed)));
        clock.set(at(1_060));
        guard.check_and_record("b", at(1_120)).await.unwrap();
        assert_eq!(guard.len(), 1, "the expired entry was purged");
    }

    #[tokio::test]
    async fn full_store_refuses_instead_of_evicting_then_recovers_after_expiry() {
        let clock = ManualClock::new(at(0));
        let guard = InMemoryReplayGuard::with_clock(2, Arc::new(clock.clone()));
        guard.check_and_record("a", at(10)).await.unwrap();
        guard.check_and_record("b", at(20)).await.unwrap();
        let err = guard.check_and_record("c", at(30)).await.unwrap_err();
        assert!(matches!(err, ReplayError::CapacityExceeded { capacity: 2 }));
        assert!(matches!(guard.check_and_record("a", at(10)).await, Err(ReplayError::Replayed)), "a is still remembered");
        clock.set(at(10));
        guard.check_and_record("c", at(30)).await.unwrap();
        assert!(matches!(guard.check_and_record("b", at(20)).await, Err(ReplayError::Replayed)));
    }

    #[tokio::test]
    async fn one_party_filling_its_share_does_not_lock_the_others_out() {
        let clock = ManualClock::new(at(0));
        let guard = InMemoryReplayGuard::with_clock(2, Arc::new(clock.clone()));
        guard.check_and_record_for(Some("noisy-agent"), "n1", at(10)).await.unwrap();
        guard.check_and_record_for(Some("noisy-agent"), "n2", at(10)).await.unwrap();
        let err = guard.check_and_record_for(Some("noisy-agent"), "n3", at(10)).await.unwrap_err();
        assert!(matches!(err, ReplayError::CapacityExceeded { capacity: 2 }), "{err}");
        guard.check_and_record_for(Some("quiet-agent"), "q1", at(10)).await.unwrap();
        guard.check_and_record_for(None, "u1", at(10)).await.unwrap();
        // A jti is still accepted once, whichever party shows it.
        let err = guard.check_and_record_for(Some("quiet-agent"), "n1", at(10)).await.unwrap_err();
        assert!(matches!(err, ReplayError::Replayed), "{err}");
        clock.set(at(10));
        guard.check_and_record_for(Some("noisy-agent"), "n3", at(20)).await.unwrap();
        assert_eq!(guard.len(), 1, "expired entries and their counts are gone");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_checks_accept_each_jti_exactly_once() {
        let guard = Arc::new(InMemoryReplayGuard::new(10_000));
        let exp = SystemTime::now() + Duration::from_secs(60);
        let mut tasks = Vec::new();
        for i in 0..400 {
            let guard = Arc::clone(&guard);
            tasks.push(tokio::spawn(async move { guard.check_and_record(&format!("jti-{}", i % 100), exp).await.is_ok() }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 100);
    }
}
