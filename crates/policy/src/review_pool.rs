//! Threads that help a review evaluate its constraints (`PolicySet::set_review_threads`). They
//! are started once, on first use, and kept: starting a thread per review cost more CPU than it
//! saved (a thread start and a fresh allocator heap, about 0.5 ms per review, measured).

use crate::constraint::Constraint;
use crate::footprint::KeyParts;
use crate::template::CompiledTemplate;
use crate::{Evaluator, Verdict};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// One evaluated constraint: its template, the time it took, its outcome.
pub(crate) type Outcome = (Arc<CompiledTemplate>, Duration, Verdict);

/// One review as the evaluations of its constraints read it, each form made once, when first
/// needed: with every decision remembered, the review is never converted for Rego at all.
pub(crate) struct ReviewInput {
    /// `input.review`, as the request holds it.
    pub json: serde_json::Value,
    value: OnceLock<regorus::Value>,
    /// Whether the review's strings are all within the BMP (for templates on the VM).
    bmp: OnceLock<bool>,
    /// Parts of decision-cache keys, shared by the templates that read the same paths.
    pub key_parts: KeyParts,
}

impl ReviewInput {
    pub(crate) fn new(json: serde_json::Value) -> Self {
        Self {
            json,
            value: OnceLock::new(),
            bmp: OnceLock::new(),
            key_parts: KeyParts::default(),
        }
    }

    /// The review as Rego reads it.
    pub(crate) fn value(&self) -> &regorus::Value {
        self.value.get_or_init(|| regorus::Value::from(self.json.clone()))
    }

    pub(crate) fn bmp(&self) -> bool {
        *self
            .bmp
            .get_or_init(|| crate::template::value_is_bmp(self.value()))
    }
}

/// The matched constraints of one review, taken one at a time by whichever thread is free.
pub(crate) struct Job {
    items: Vec<(Arc<CompiledTemplate>, Arc<Constraint>)>,
    review: ReviewInput,
    evaluator: Evaluator,
    /// The items to evaluate (not answered from remembered decisions) and the keys to remember
    /// their decisions by.
    pending: Vec<(usize, Option<Vec<u8>>)>,
    next: AtomicUsize,
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Default)]
struct State {
    outcomes: Vec<(usize, Outcome)>,
    done: usize,
    panic: Option<Box<dyn Any + Send>>,
}

impl Job {
    pub(crate) fn new(
        items: Vec<(Arc<CompiledTemplate>, Arc<Constraint>)>,
        review: serde_json::Value,
        evaluator: Evaluator,
    ) -> Self {
        Self {
            items,
            review: ReviewInput::new(review),
            evaluator,
            pending: Vec::new(),
            next: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
        }
    }

    /// Evaluates constraints until none is left to take.
    fn work(&self) {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let Some((i, key)) = self.pending.get(n) else {
                return;
            };
            let i = *i;
            let (template, constraint) = &self.items[i];
            let started = Instant::now();
            // Caught so that the review still finishes (every item counted) and the caller can
            // raise it: a panic must not leave the caller waiting.
            let result = catch_unwind(AssertUnwindSafe(|| {
                self.evaluator
                    .evaluate(template, constraint, &self.review, key.clone())
            }));
            let mut state = self.lock();
            match result {
                Ok(result) => state
                    .outcomes
                    .push((i, (template.clone(), started.elapsed(), result))),
                Err(panic) => {
                    state.panic.get_or_insert(panic);
                }
            }
            state.done += 1;
            if state.done == self.items.len() {
                self.finished.notify_all();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the job on this thread and up to `helpers` pool threads; the outcomes in the items'
    /// order. A panic in any evaluation is raised here once the others are done.
    pub(crate) fn run(mut self, helpers: usize) -> Vec<Outcome> {
        // Remembered decisions first, on this thread: when all are, no helper is woken.
        {
            let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            for (i, (template, constraint)) in self.items.iter().enumerate() {
                let started = Instant::now();
                match self.evaluator.remembered(template, constraint, &self.review) {
                    Ok(verdict) => {
                        state
                            .outcomes
                            .push((i, (template.clone(), started.elapsed(), verdict)));
                        state.done += 1;
                    }
                    Err(key) => self.pending.push((i, key)),
                }
            }
        }
        let job = Arc::new(self);
        if helpers > 0 && job.pending.len() > 1 {
            let pool = pool();
            for _ in 0..helpers.min(pool.threads) {
                pool.submit(job.clone());
            }
        }
        job.work();
        let mut state = job.lock();
        while state.done < job.items.len() {
            state = job.finished.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(panic) = state.panic.take() {
            drop(state);
            resume_unwind(panic);
        }
        let mut outcomes = std::mem::take(&mut state.outcomes);
        outcomes.sort_unstable_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect()
    }
}

struct Pool {
    /// `Sender` is `Sync`: reviews on several threads submit without a lock.
    sender: Sender<Arc<Job>>,
    threads: usize,
}

impl Pool {
    fn submit(&self, job: Arc<Job>) {
        // With no thread to take it (none could be started), the caller does all the work.
        let _ = self.sender.send(job);
    }
}

/// The process's helper threads: one fewer than the cores, started on first use.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = channel::<Arc<Job>>();
        let receiver = Arc::new(Mutex::new(receiver));
        let wanted = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .max(1);
        let mut threads = 0;
        for n in 0..wanted {
            let receiver = receiver.clone();
            let started = std::thread::Builder::new()
                .name(format!("palisade-review-{n}"))
                .spawn(move || helper(&receiver));
            threads += usize::from(started.is_ok());
        }
        Pool { sender, threads }
    })
}

fn helper(receiver: &Mutex<Receiver<Arc<Job>>>) {
    loop {
        let job = match receiver.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A job whose items are all taken (its review already done) returns at once.
        job.work();
    }
}
