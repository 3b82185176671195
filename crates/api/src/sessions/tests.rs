//! Hibernation, transition by transition, in process: sessions opened as rmcp opens them, and
//! woken by rmcp's own service.

use rmcp::{ServerHandler, model::ClientRequest};
use switchboard_gateway::pool::UpstreamPool;
use tokio_util::sync::CancellationToken;

use super::*;

#[test]
fn the_keep_alive_is_a_notification_rmcp_accepts() {
    let message = keep_alive_message().expect("parses as a client message");
    assert!(matches!(message, ClientJsonRpcMessage::Notification(_)));
}

/// A server with nothing to serve: the sessions under test need one to answer `initialize`.
struct Quiet;
impl ServerHandler for Quiet {}

/// The endpoint `srv`'s sessions, and the raw path's registrations they make. Hibernated
/// sessions expire after `idle_timeout`; rmcp's own keep-alive for awake ones stays long, so
/// that no awake session ends while a test looks at it.
async fn endpoint(
    idle_timeout: Duration,
) -> (Arc<HibernatingSessions>, SharedSessions, tempfile::TempDir) {
    let shared = SharedSessions::new(UpstreamPool::default());
    // A store of its own (a file: each connection to `:memory:` is another database).
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let store = switchboard_store::Store::open(&url).await.expect("store");
    let directory = SessionDirectory::new(store, Default::default());
    let mut sessions = HibernatingSessions::new(
        Some("srv".into()),
        shared.clone(),
        directory,
        Duration::from_secs(600),
    );
    Arc::get_mut(&mut sessions)
        .expect("not shared yet")
        .idle_timeout = idle_timeout;
    (sessions, shared, dir)
}

fn message(json: serde_json::Value) -> ClientJsonRpcMessage {
    serde_json::from_value(json).expect("a client message")
}

fn initialize(capabilities: serde_json::Value) -> ClientJsonRpcMessage {
    message(
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
}

fn initialized() -> ClientJsonRpcMessage {
    message(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
}

/// Serves a session's worker as rmcp's service does: when the server ends, the session's
/// id is closed. Resolves once it has.
fn serve(
    sessions: &Arc<HibernatingSessions>,
    id: &SessionId,
    transport: WorkerTransport<LocalSessionWorker>,
) -> tokio::task::JoinHandle<()> {
    let (sessions, id) = (sessions.clone(), id.clone());
    tokio::spawn(async move {
        if let Ok(running) = rmcp::serve_server(Quiet, transport).await {
            let _ = running.waiting().await;
        }
        let _ = sessions.close_session(&id).await;
    })
}

/// Opens a session as rmcp does for a client with `capabilities`: created, initialized,
/// its parameters stored, and told the client is initialized.
async fn open(
    sessions: &Arc<HibernatingSessions>,
    capabilities: serde_json::Value,
) -> (SessionId, tokio::task::JoinHandle<()>) {
    let (id, transport) = sessions.create_session().await.expect("created");
    let worker = serve(sessions, &id, transport);
    let init = initialize(capabilities);
    let params = match &init {
        ClientJsonRpcMessage::Request(request) => match &request.request {
            ClientRequest::InitializeRequest(init) => init.params.clone(),
            _ => unreachable!("an initialize request"),
        },
        _ => unreachable!("a request"),
    };
    sessions
        .initialize_session(&id, init)
        .await
        .expect("initialized");
    SessionStore::store(&**sessions, &id, &SessionState::new(params))
        .await
        .expect("stored");
    sessions
        .accept_message(&id, initialized())
        .await
        .expect("accepted");
    (id, worker)
}

/// A `ping` on session `id`, answered by rmcp's service over `sessions`, in process: a
/// hibernated session is woken by rmcp's own restore.
async fn ping(sessions: &Arc<HibernatingSessions>, id: &SessionId) -> axum::http::StatusCode {
    let config = crate::mcp::config(
        &["127.0.0.1".to_string()],
        &CancellationToken::new(),
        sessions.clone(),
    );
    let service =
        rmcp::transport::StreamableHttpService::new(|| Ok(Quiet), sessions.clone(), config);
    let request = axum::http::Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", id.as_ref())
        .body(Body::from(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#))
        .expect("a request");
    service.handle(request).await.status()
}

fn state(sessions: &HibernatingSessions, id: &SessionId) -> Option<State> {
    sessions.records().get(id).map(|record| record.state)
}

/// Ends `visit` and waits until the session has changed state (it hibernates).
async fn leave_and_await_change(sessions: &HibernatingSessions, visit: Visit) {
    let changed = sessions.changed.notified();
    drop(visit);
    changed.await;
}

#[tokio::test]
async fn an_unused_session_hibernates_and_the_first_request_wakes_it() {
    let (sessions, shared, _store) = endpoint(Duration::from_secs(600)).await;
    let (id, first_worker) = open(&sessions, serde_json::json!({})).await;
    // Initialized, it is registered with the raw path, and awake.
    assert_eq!(state(&sessions, &id), Some(State::Awake));
    assert!(shared.get(&id, Some("srv")).is_some());
    assert!(sessions.has_session(&id).await.expect("asks"));

    // Awake → Hibernating → Hibernated once rmcp serves nothing for it.
    let visit = sessions.visit(&id).expect("a known session");
    leave_and_await_change(&sessions, visit).await;
    assert_eq!(state(&sessions, &id), Some(State::Hibernated));
    assert_eq!(sessions.hibernated(), 1);
    assert!(!sessions.inner.sessions.read().await.contains_key(&id));
    // Its worker's end is expected, and does not end the session.
    first_worker.await.expect("the old worker ended");
    assert_eq!(sessions.count(), 1);
    // Asleep, it stays registered with the raw path, and its GET stream can stay open.
    assert!(shared.get(&id, Some("srv")).is_some());
    let ended = sessions.sleeper(&id).expect("a sleeper");
    assert!(!ended.is_cancelled());

    // Hibernated → Waking → Awake: rmcp's restore replays the handshake into a new worker
    // for the first request; one that comes meanwhile waits, and both are answered.
    let (first, second) = tokio::join!(ping(&sessions, &id), ping(&sessions, &id));
    let ok = axum::http::StatusCode::OK;
    assert_eq!((first, second), (ok, ok));
    assert_eq!(state(&sessions, &id), Some(State::Awake));
    assert_eq!(sessions.hibernated(), 0);
    assert!(sessions.inner.sessions.read().await.contains_key(&id));
    assert!(shared.get(&id, Some("srv")).is_some());
}

#[tokio::test]
async fn a_request_finds_a_hibernated_session_waking_and_waits_for_it() {
    let (sessions, _shared, _store) = endpoint(Duration::from_secs(600)).await;
    let (id, _worker) = open(&sessions, serde_json::json!({})).await;
    leave_and_await_change(&sessions, sessions.visit(&id).expect("known")).await;
    // Hibernated → Waking for the first request to ask; the next waits until it is awake.
    assert!(!sessions.has_session(&id).await.expect("asks"));
    assert_eq!(state(&sessions, &id), Some(State::Waking));
    let waiting = {
        let (sessions, id) = (sessions.clone(), id.clone());
        tokio::spawn(async move { sessions.has_session(&id).await })
    };
    // On the test's one thread, the spawned request runs until it waits.
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "it waits while the session wakes");
    let changed = sessions.changed.notified();
    sessions.records().get_mut(&id).expect("known").state = State::Awake;
    sessions.changed.notify_waiters();
    changed.await;
    assert!(waiting.await.expect("joins").expect("asks"));
}

#[tokio::test]
async fn a_session_stays_awake_while_rmcp_serves_it() {
    let (sessions, _shared, _store) = endpoint(Duration::from_secs(600)).await;
    let (id, _worker) = open(&sessions, serde_json::json!({})).await;
    let request = sessions.visit(&id).expect("a known session");
    let stream = sessions.visit(&id).expect("a known session");
    drop(request);
    // One visit is still open: nothing is started, and it stays awake.
    sessions.hibernate(&id).await;
    assert_eq!(state(&sessions, &id), Some(State::Awake));
    leave_and_await_change(&sessions, stream).await;
    assert_eq!(state(&sessions, &id), Some(State::Hibernated));
}

#[tokio::test]
async fn a_client_that_answers_requests_never_hibernates() {
    let (sessions, shared, _store) = endpoint(Duration::from_secs(600)).await;
    let (id, _worker) = open(&sessions, serde_json::json!({"sampling": {}})).await;
    assert!(shared.get(&id, Some("srv")).is_none());
    assert!(sessions.sleeper(&id).is_none());
    drop(sessions.visit(&id).expect("a known session"));
    sessions.hibernate(&id).await;
    assert_eq!(state(&sessions, &id), Some(State::Awake));
    assert!(sessions.inner.sessions.read().await.contains_key(&id));
}

#[tokio::test]
async fn a_failed_wake_leaves_it_asleep_for_the_next_request() {
    let (sessions, _shared, _store) = endpoint(Duration::from_secs(600)).await;
    let (id, _worker) = open(&sessions, serde_json::json!({})).await;
    leave_and_await_change(&sessions, sessions.visit(&id).expect("known")).await;
    assert!(!sessions.has_session(&id).await.expect("asks"));
    assert_eq!(state(&sessions, &id), Some(State::Waking));
    // The replay fails: no worker was restored to take it.
    let replayed = sessions
        .initialize_session(&id, initialize(serde_json::json!({})))
        .await;
    assert!(replayed.is_err());
    assert_eq!(state(&sessions, &id), Some(State::Hibernated));
    // The next request tries to wake it again.
    assert!(!sessions.has_session(&id).await.expect("asks"));
    assert_eq!(state(&sessions, &id), Some(State::Waking));
}

#[tokio::test]
async fn a_hibernated_session_ends_after_the_idle_timeout_or_when_deleted() {
    // Every hibernated session is past a zero idle timeout.
    let (sessions, shared, _store) = endpoint(Duration::ZERO).await;
    let (asleep, _a) = open(&sessions, serde_json::json!({})).await;
    let (awake, _b) = open(&sessions, serde_json::json!({})).await;
    let (deleted, _c) = open(&sessions, serde_json::json!({})).await;
    let _kept_awake = sessions.visit(&awake).expect("known");
    leave_and_await_change(&sessions, sessions.visit(&asleep).expect("known")).await;
    let ended = sessions.sleeper(&asleep).expect("a sleeper");

    // An awake session is rmcp's to end; a hibernated one ends here.
    sessions.expire_idle();
    assert_eq!(state(&sessions, &asleep), None);
    assert_eq!(state(&sessions, &awake), Some(State::Awake));
    assert!(ended.is_cancelled(), "its GET stream ends with it");
    assert!(shared.get(&asleep, Some("srv")).is_none());

    // A client's DELETE ends a session whatever its state.
    let deleted_ended = sessions.sleeper(&deleted).expect("a sleeper");
    SessionStore::delete(&*sessions, &deleted)
        .await
        .expect("deletes");
    assert_eq!(state(&sessions, &deleted), None);
    assert!(deleted_ended.is_cancelled());
    assert!(!sessions.has_session(&deleted).await.expect("asks"));
}
