//! Splitting one model call's int8 matmuls over two or more cores (native `threads` builds).
//!
//! The column panels of each matmul are shared out; the calling thread takes the first share.
//! Two ways to reach the other cores, chosen per model call by the encoder:
//! * [`Strategy::Pool`]: rayon jobs on the encoder's pool. Right for document batches, whose
//!   matmuls are long and whose other ops use the same pool through tract.
//! * [`Strategy::Spinning`]: one helper per other core that spins for the whole call, waiting
//!   for shares. A query's matmuls take tens of microseconds each, and between them a rayon
//!   worker falls asleep; waking it again costs more than the split saves.

use crate::kernels::linear::Int8Matrix;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Below this many multiply-adds a matmul stays on one thread.
const MIN_MACS_TO_SPLIT: usize = 1 << 18;

/// How the int8 matmuls of the current model call on this thread reach other cores.
#[derive(Clone)]
pub(crate) enum Strategy {
    Pool(Arc<rayon::ThreadPool>),
    Spinning(Arc<Vec<Helper>>),
}

thread_local! {
    static CURRENT: RefCell<Option<Strategy>> = const { RefCell::new(None) };
}

/// Runs `f` (one model call) with int8 matmuls split over `pool`'s threads. `spinning`: keep
/// helpers spinning on the pool for the whole call instead of queueing rayon jobs.
pub(crate) fn with_threads<R>(
    pool: &Arc<rayon::ThreadPool>,
    spinning: bool,
    f: impl FnOnce() -> R,
) -> R {
    if !spinning {
        return scoped(Strategy::Pool(pool.clone()), f);
    }
    let others = pool.current_num_threads().saturating_sub(1).max(1);
    let helpers: Arc<Vec<Helper>> = Arc::new((0..others).map(|_| Helper::default()).collect());
    pool.in_place_scope(|scope| {
        for i in 0..others {
            let helpers = helpers.clone();
            scope.spawn(move |_| helpers[i].serve());
        }
        let r = scoped(Strategy::Spinning(helpers.clone()), f);
        helpers.iter().for_each(Helper::stop);
        r
    })
}

fn scoped<R>(strategy: Strategy, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.replace(Some(strategy));
    let r = f();
    CURRENT.set(previous);
    r
}

/// `y = x · W` split over the current model call's threads, if it has any and the matmul is
/// large enough. Returns whether it ran.
pub(crate) fn matmul(w: &Arc<Int8Matrix>, x: &[f32], m: usize, y: &mut [f32]) -> bool {
    let Some(strategy) = CURRENT.with_borrow(Clone::clone) else {
        return false;
    };
    let threads = match &strategy {
        Strategy::Pool(pool) => pool.current_num_threads(),
        Strategy::Spinning(helpers) => helpers.len() + 1,
    };
    let parts = threads.min(w.panel_count());
    if parts < 2 || m * w.k() * w.n() < MIN_MACS_TO_SPLIT {
        return false;
    }
    let shares: Vec<Range<usize>> = (0..parts)
        .map(|i| i * w.panel_count() / parts..(i + 1) * w.panel_count() / parts)
        .collect();
    let share_output = |share: &Range<usize>| vec![0f32; m * w.columns(share).len()];
    let mut outs: Vec<Vec<f32>> = shares.iter().map(share_output).collect();
    match strategy {
        Strategy::Pool(pool) => pool.in_place_scope(|scope| {
            let mut jobs = shares.iter().zip(outs.iter_mut());
            let (first, first_out) = jobs.next().expect("two shares or more");
            for (share, out) in jobs {
                scope.spawn(move |_| w.panels_into(x, m, share.clone(), out));
            }
            w.panels_into(x, m, first.clone(), first_out);
        }),
        Strategy::Spinning(helpers) => {
            // Helpers need owned inputs: a query's `x` is a few kilobytes.
            let x_owned: Arc<[f32]> = x.into();
            for (helper, share) in helpers.iter().zip(&shares[1..]) {
                let (w, x, share) = (w.clone(), x_owned.clone(), share.clone());
                helper.post(Box::new(move || {
                    let mut out = vec![0f32; m * w.columns(&share).len()];
                    w.panels_into(&x, m, share, &mut out);
                    out
                }));
            }
            w.panels_into(x, m, shares[0].clone(), &mut outs[0]);
            for (helper, out) in helpers.iter().zip(&mut outs[1..]) {
                *out = helper.collect();
            }
        }
    }
    for (share, out) in shares.iter().zip(&outs) {
        w.scatter(share, out, y);
    }
    true
}

type Job = Box<dyn FnOnce() -> Vec<f32> + Send>;

/// One helper: a posted share, its result, and a flag to stop spinning.
#[derive(Default)]
pub(crate) struct Helper {
    posted: AtomicBool,
    job: Mutex<Option<Job>>,
    done: AtomicBool,
    result: Mutex<Option<Vec<f32>>>,
    stopped: AtomicBool,
}

impl Helper {
    /// The helper's loop, on a pool thread: run posted shares until stopped.
    fn serve(&self) {
        while !self.stopped.load(Ordering::Acquire) {
            if !self.posted.load(Ordering::Acquire) {
                std::hint::spin_loop();
                continue;
            }
            let job = self.job.lock().map(|mut j| j.take()).unwrap_or(None);
            if let Some(job) = job {
                // A panicking share leaves no result; `collect` then panics on the caller's
                // thread instead of waiting forever.
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).ok();
                if let Ok(mut result) = self.result.lock() {
                    *result = out;
                }
                self.done.store(true, Ordering::Release);
            }
        }
    }

    fn post(&self, job: Job) {
        self.done.store(false, Ordering::Relaxed);
        if let Ok(mut slot) = self.job.lock() {
            *slot = Some(job);
        }
        self.posted.store(true, Ordering::Release);
    }

    /// The posted share's result: run here if the helper has not picked it up (it may not have
    /// started yet, or the pool is busy), so a call never waits on a thread that is not there.
    fn collect(&self) -> Vec<f32> {
        self.posted.store(false, Ordering::Release);
        let unclaimed = self.job.lock().map(|mut j| j.take()).unwrap_or(None);
        if let Some(job) = unclaimed {
            return job();
        }
        while !self.done.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        self.result
            .lock()
            .map(|mut r| r.take())
            .unwrap_or(None)
            .expect("the helper thread panicked on its share")
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}
