//! Busy polling for a worker with its own event loop (opt-in, `--busy-poll`).
//!
//! On a virtual machine a CPU that goes idle between two requests is halted or handed to another
//! guest, and the next request finds the worker's caches cold: at one connection on this project's
//! 2-core test VM a benign GET cost palisade about 330 µs of CPU per request with the vCPUs idling
//! between requests and 240 µs with them kept busy (BENCHMARKS.md, session 10). HAProxy's
//! `busy-polling` answers the same problem by never sleeping in the poller. Here a worker keeps
//! polling its sockets without blocking only while it is busy: after `window` with no client
//! socket making progress it parks like any idle event loop, and the next read wakes it.

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Bumped on every read from a client socket on this thread.
    static PROGRESS: Cell<u64> = const { Cell::new(0) };
    /// The parked busy-poll task of this thread, if it is parked.
    static PARKED: Cell<Option<Waker>> = const { Cell::new(None) };
}

fn progress() -> u64 {
    PROGRESS.with(Cell::get)
}

/// A client socket on this thread made progress: keep polling (or start again).
pub(crate) fn note_progress() {
    PROGRESS.with(|p| p.set(p.get().wrapping_add(1)));
    if let Some(waker) = PARKED.with(Cell::take) {
        waker.wake();
    }
}

/// Keeps this thread's event loop polling without blocking while its client sockets make
/// progress, and parks after `window` without any. Runs until dropped; spawn it on a
/// single-threaded runtime (with several threads it would spin on whichever it landed).
pub async fn busy_poll(window: Duration) {
    loop {
        let mut seen = progress();
        let mut since = Instant::now();
        loop {
            // A yielded task makes the runtime poll the reactor with a zero timeout, run whatever
            // became ready, and come back here.
            tokio::task::yield_now().await;
            let now = progress();
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= window {
                break;
            }
        }
        let parked_at = progress();
        std::future::poll_fn(|cx| {
            if progress() != parked_at {
                return Poll::Ready(());
            }
            PARKED.with(|p| p.set(Some(cx.waker().clone())));
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked() -> bool {
        PARKED.with(|p| {
            let waker = p.take();
            let parked = waker.is_some();
            p.set(waker);
            parked
        })
    }

    #[test]
    fn spins_while_there_is_progress_and_parks_after_the_window() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let spinner = tokio::spawn(busy_poll(Duration::from_millis(20)));
            // Reads every millisecond keep it polling.
            for _ in 0..50 {
                note_progress();
                tokio::time::sleep(Duration::from_millis(1)).await;
                assert!(!parked(), "no park while there is progress");
            }
            // Quiet for longer than the window: it parks.
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert!(parked(), "parked after a quiet window");
            // The next read wakes it.
            note_progress();
            assert!(!parked());
            spinner.abort();
        });
    }
}
