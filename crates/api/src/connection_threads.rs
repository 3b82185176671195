//! Where accepted connections are served: on the runtime that accepted them, or spread over
//! threads that each run a single-threaded runtime of their own.
//!
//! On a multi-threaded runtime a proxied call hops between workers: the worker that reads the
//! client's request is rarely the one the upstream's answer wakes, and every hop is a `futex`
//! call and a context switch. A connection whose thread runs its own runtime is served from its
//! first byte to its last on that thread, with the upstream connections that thread opened
//! (the raw client keeps them apart by thread on such runtimes), so a fast call wakes no other
//! thread. Measured in BENCHMARKS.md (session 13).

use std::{
    future::Future,
    io,
    sync::atomic::{AtomicUsize, Ordering},
    thread::JoinHandle,
    time::Duration,
};

use tokio::{net::TcpStream, runtime::Handle, sync::oneshot};

/// How long a connection thread's runtime waits, once stopped, for blocking work its tasks
/// started (a DNS lookup, say) before it lets the thread end anyway.
const BLOCKING_GRACE: Duration = Duration::from_secs(1);
/// How often a connection thread's runtime is woken for nothing. tokio's timer wakes its I/O
/// driver (a write to an eventfd, and one more `epoll_wait`) whenever a timer is set that is
/// due before every timer pending; with none pending, that is every call's timeout and every
/// answered stream's drain deadline, two wake-ups per call (counted with `perf` in
/// BENCHMARKS.md, session 13). A timer always due within this period keeps a call's timers,
/// which are all longer, from waking the driver.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Where [`crate::serve`] serves connections.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionThreads {
    /// On the runtime that accepts them, as tasks any of its workers may run.
    Shared,
    /// Each on one of these threads, in turn.
    Dedicated(Dedicated),
}

impl ConnectionThreads {
    /// `count` threads of their own, or [`ConnectionThreads::Shared`] for 0.
    pub fn start(count: usize) -> io::Result<Self> {
        if count == 0 {
            return Ok(Self::Shared);
        }
        let threads = (0..count)
            .map(ConnectionThread::start)
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self::Dedicated(Dedicated {
            threads,
            next: AtomicUsize::new(0),
        }))
    }

    /// Serves `tcp` with `serve` on the next thread, or here.
    pub(crate) fn serve<F, Fut>(&self, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let dedicated = match self {
            Self::Shared => {
                tokio::spawn(serve(tcp));
                return;
            }
            Self::Dedicated(dedicated) => dedicated,
        };
        // The socket is registered with the accepting runtime's reactor; it moves to the
        // thread's own, where its readiness wakes nobody else.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(error) => {
                tracing::warn!(%error, "cannot hand an accepted connection to its thread");
                return;
            }
        };
        let turn = dedicated.next.fetch_add(1, Ordering::Relaxed) % dedicated.threads.len();
        dedicated.threads[turn].runtime.spawn(async move {
            match TcpStream::from_std(tcp) {
                Ok(tcp) => serve(tcp).await,
                Err(error) => {
                    tracing::warn!(%error, "cannot register an accepted connection on its thread")
                }
            }
        });
    }

    /// Stops the threads. Tasks still on them (sessions, upstream connections) are dropped, so
    /// call this once everything they serve has been shut down.
    pub(crate) async fn stop(self) {
        let Self::Dedicated(dedicated) = self else {
            return;
        };
        let joins: Vec<_> = dedicated
            .threads
            .into_iter()
            .map(|thread| {
                let _ = thread.stop.send(());
                thread.join
            })
            .collect();
        // Joining blocks; the runtimes need up to `BLOCKING_GRACE` to end.
        let joined = tokio::task::spawn_blocking(move || {
            for join in joins {
                if join.join().is_err() {
                    tracing::error!("a connection thread panicked");
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::error!("waiting for the connection threads failed");
        }
    }
}

/// The threads of [`ConnectionThreads::Dedicated`].
#[derive(Debug)]
pub struct Dedicated {
    /// One per thread; connections go to them in turn.
    threads: Vec<ConnectionThread>,
    /// Whose turn the next connection is.
    next: AtomicUsize,
}

/// A thread running a single-threaded runtime until told to stop.
#[derive(Debug)]
struct ConnectionThread {
    /// Spawns onto the thread's runtime.
    runtime: Handle,
    /// Tells the thread to stop; dropping it does too.
    stop: oneshot::Sender<()>,
    /// The thread, joined at stop.
    join: JoinHandle<()>,
}

impl ConnectionThread {
    fn start(index: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let join = std::thread::Builder::new()
            .name(format!("switchboard-connections-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut heartbeat = tokio::time::interval(HEARTBEAT);
                    tokio::select! {
                        _ = stopped => {}
                        () = async { loop { heartbeat.tick().await; } } => {}
                    }
                });
                runtime.shutdown_timeout(BLOCKING_GRACE);
            })?;
        Ok(Self {
            runtime: handle,
            stop,
            join,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, sync::Arc};

    use tokio::{io::AsyncWriteExt as _, net::TcpListener, sync::mpsc};

    use super::*;

    /// Accepts `count` connections and serves each with a task that reports its thread.
    async fn threads_serving(threads: &ConnectionThreads, count: usize) -> Vec<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (report, mut reports) = mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for _ in 0..count {
            clients.push(TcpStream::connect(address).await.expect("connect"));
            let (tcp, _) = listener.accept().await.expect("accept");
            let report = report.clone();
            threads.serve(tcp, move |mut tcp| async move {
                let flavor = Handle::current().runtime_flavor();
                let name = std::thread::current().name().unwrap_or("").to_owned();
                // The socket works where it landed.
                tcp.write_all(b"hello").await.expect("write");
                let _ = report.send(format!("{name} {flavor:?}"));
            });
        }
        let mut seen = Vec::new();
        for _ in 0..count {
            seen.push(reports.recv().await.expect("report"));
        }
        seen
    }

    #[tokio::test]
    async fn connections_go_to_the_threads_in_turn_and_are_served_there() {
        let threads = ConnectionThreads::start(2).expect("start");
        let seen = threads_serving(&threads, 4).await;
        let distinct: HashSet<_> = seen.iter().collect();
        assert_eq!(
            distinct,
            HashSet::from([
                &"switchboard-connections-0 CurrentThread".to_owned(),
                &"switchboard-connections-1 CurrentThread".to_owned()
            ]),
            "{seen:?}"
        );
        assert_eq!(
            seen.iter()
                .filter(|s| s.starts_with("switchboard-connections-0"))
                .count(),
            2
        );
        threads.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_serves_on_the_accepting_runtime() {
        let threads = ConnectionThreads::start(0).expect("start");
        let seen = threads_serving(&threads, 2).await;
        assert!(seen.iter().all(|s| s.ends_with("MultiThread")), "{seen:?}");
        threads.stop().await;
    }

    #[tokio::test]
    async fn stopping_ends_the_tasks_left_on_the_threads() {
        let threads = ConnectionThreads::start(1).expect("start");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let _client = TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        // Held by a task that never ends on its own; dropped when its runtime goes.
        let held = Arc::new(());
        let in_task = held.clone();
        let (started, is_started) = oneshot::channel();
        threads.serve(tcp, move |_tcp| async move {
            let _held = in_task;
            let _ = started.send(());
            std::future::pending::<()>().await;
        });
        is_started.await.expect("the task started");
        assert_eq!(Arc::strong_count(&held), 2);
        threads.stop().await;
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
