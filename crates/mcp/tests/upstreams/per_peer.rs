//! The same scenarios against every peer and transport.

use super::*;

async fn list_and_call(peer: Peer) {
    let target = start(peer).await;
    let tools = target.upstream.list_tools().await.expect("lists");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    let expected = if peer.is_python() {
        ["add", "slow"]
    } else {
        ["get-sum", "echo"]
    };
    for name in expected {
        assert!(
            names.contains(&name.to_string()),
            "{name} missing from {names:?}"
        );
    }
    assert!(call_sum(&target, peer).await.contains('5'));
    let expected_transport = match peer {
        Peer::EverythingStdio | Peer::PythonStdio => TransportKind::Stdio,
        Peer::EverythingHttp | Peer::PythonHttp => TransportKind::StreamableHttp,
        Peer::EverythingSse | Peer::PythonSse => TransportKind::Sse,
    };
    assert_eq!(target.upstream.transport(), Some(expected_transport));
}

async fn structured_content(peer: Peer) {
    let target = start(peer).await;
    let (tool, arguments, key) = if peer.is_python() {
        ("weather", json!({"city": "Oslo"}), "celsius")
    } else {
        (
            "get-structured-content",
            json!({"location": "Chicago"}),
            "temperature",
        )
    };
    let result = target
        .upstream
        .call_tool(tool, args(arguments), RequestOptions::default())
        .await
        .expect("calls");
    let structured = result.structured_content.expect("structured content");
    assert!(
        structured.get(key).is_some_and(Value::is_number),
        "{structured}"
    );
}

async fn error_result(peer: Peer) {
    let target = start(peer).await;
    let (tool, arguments) = if peer.is_python() {
        ("fail", json!({"reason": "the disk is on fire"}))
    } else {
        // A wrong argument type: the TypeScript SDK answers with an isError result.
        ("get-sum", json!({"a": "two", "b": 3}))
    };
    let result = target
        .upstream
        .call_tool(tool, args(arguments), RequestOptions::default())
        .await
        .expect("calls");
    assert_eq!(result.is_error, Some(true), "{result:?}");
    if peer.is_python() {
        assert!(text_of(&result).contains("the disk is on fire"));
    }
}

async fn progress(peer: Peer) {
    let target = start(peer).await;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let (tool, arguments) = slow_call(peer, 0.5, "progress");
    let options = RequestOptions {
        progress: Some(sender),
        ..Default::default()
    };
    let result = target
        .upstream
        .call_tool(tool, arguments, options)
        .await
        .expect("calls");
    assert_ne!(result.is_error, Some(true));
    let mut reports = Vec::new();
    while let Ok(report) = receiver.try_recv() {
        reports.push(report);
    }
    // Both peers report five steps before they answer: every report arrives, in the upstream's
    // order, before the answer.
    let steps: Vec<(f64, Option<f64>)> = reports.iter().map(|r| (r.progress, r.total)).collect();
    let expected: Vec<(f64, Option<f64>)> = (1..=5).map(|step| (step as f64, Some(5.0))).collect();
    assert_eq!(steps, expected, "{reports:?}");
}

async fn cancellation(peer: Peer) {
    let target = start(peer).await;
    // Explicit cancellation.
    let token = CancellationToken::new();
    let (tool, arguments) = slow_call(peer, 30.0, "explicit");
    let options = RequestOptions {
        cancel: Some(token.clone()),
        ..Default::default()
    };
    let upstream = target.upstream.clone();
    let call = tokio::spawn(async move { upstream.call_tool(tool, arguments, options).await });
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    // Wait until the server is demonstrably running the call before cancelling it.
    let (tool2, arguments2) = slow_call(peer, 30.0, "dropped");
    let upstream = target.upstream.clone();
    let dropped = tokio::spawn(async move {
        let options = RequestOptions {
            progress: Some(progress_tx),
            ..Default::default()
        };
        upstream.call_tool(tool2, arguments2, options).await
    });
    progress_rx
        .recv()
        .await
        .expect("the second call reports progress");
    token.cancel();
    let error = call.await.expect("joins").expect_err("cancelled");
    assert!(matches!(error, UpstreamError::Cancelled { .. }), "{error}");
    // Dropping the future cancels too.
    dropped.abort();
    let _ = dropped.await;
    if peer.is_python() {
        wait_until_cancel_recorded(&target.upstream, "explicit").await;
        wait_until_cancel_recorded(&target.upstream, "dropped").await;
    }
    // The session survives cancellations.
    assert!(call_sum(&target, peer).await.contains('5'));
}

async fn timeout(peer: Peer) {
    let target = start(peer).await;
    let (tool, arguments) = slow_call(peer, 30.0, "timeout");
    let options = RequestOptions {
        timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    // The tool runs for 30 s: a call that did not time out would end with its answer.
    let error = target
        .upstream
        .call_tool(tool, arguments, options)
        .await
        .expect_err("times out");
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error}");
    if peer.is_python() {
        wait_until_cancel_recorded(&target.upstream, "timeout").await;
    }
    assert!(call_sum(&target, peer).await.contains('5'));
}

/// HTTP peers: the server is redeployed, its sessions are gone, and the next call still works.
/// Stdio peers: the child is killed mid-call; the call fails at once and the next one works.
async fn session_loss(peer: Peer) {
    let mut target = start(peer).await;
    assert!(call_sum(&target, peer).await.contains('5'));
    match target.server.as_mut() {
        Some(server) => {
            server.restart().await.expect("restarts");
            assert!(call_sum(&target, peer).await.contains('5'));
        }
        None => {
            let pid = target.upstream.child_pid().expect("a child runs");
            let (tool, arguments) = slow_call(peer, 30.0, "killed");
            let upstream = target.upstream.clone();
            let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
            let call = tokio::spawn(async move {
                let options = RequestOptions {
                    progress: Some(progress_tx),
                    ..Default::default()
                };
                upstream.call_tool(tool, arguments, options).await
            });
            progress_rx.recv().await.expect("the call is running");
            nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .expect("kills the child");
            // A call that missed the exit would end at its timeout, not as closed.
            let error = call.await.expect("joins").expect_err("fails");
            assert!(matches!(error, UpstreamError::Closed { .. }), "{error}");
            assert!(error.to_string().contains("exited"), "{error}");
            assert!(call_sum(&target, peer).await.contains('5'));
            let new_pid = target.upstream.child_pid().expect("a new child runs");
            assert_ne!(pid, new_pid);
        }
    }
}

macro_rules! per_peer {
    ($($peer:ident),*) => {
        $(
            #[allow(non_snake_case)]
            mod $peer {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn list_and_call() { super::list_and_call(Peer::$peer).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn structured_content() { super::structured_content(Peer::$peer).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn error_result() { super::error_result(Peer::$peer).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn progress() { super::progress(Peer::$peer).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cancellation() { super::cancellation(Peer::$peer).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn timeout() { super::timeout(Peer::$peer).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn session_loss() { super::session_loss(Peer::$peer).await }
            }
        )*
    };
}

per_peer!(
    EverythingStdio,
    EverythingHttp,
    EverythingSse,
    PythonStdio,
    PythonHttp,
    PythonSse
);
