//! `Kit::serve` runs its server as a task of its own; a `serve` its caller
//! drops must still stop serving, as the future it used to poll did.

use std::time::{Duration, Instant};

use spfs_autostart_kit::{Identity, Kit, KitConfig, ResolvedEndpoint};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_its_caller_drops_stops_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let socket = state.join("service.sock");
    let kit = Kit::start(
        Identity {
            name: "serve-test".into(),
            version: "0".into(),
        },
        KitConfig {
            state_dir: state.clone(),
            endpoint: ResolvedEndpoint::Unix(socket.clone()),
            idle_timeout: Duration::ZERO,
            ready_fd: None,
            lock_fd: None,
        },
    )
    .expect("start the kit in a temp state dir");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // A service that ends `serve` its own way, as a `select!` in its main would.
    let service = tokio::spawn(async move {
        tokio::select! {
            result = kit.serve(|routes| routes) => Some(result),
            _ = stopped => None,
        }
    });
    tokio::net::UnixStream::connect(&socket)
        .await
        .expect("the kit serves at its socket");
    stop.send(()).unwrap();
    assert!(
        service.await.unwrap().is_none(),
        "serve was dropped, it did not end by itself"
    );
    // The listener closes with the server task: connecting is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::UnixStream::connect(&socket).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // Reset: queued as the listener closed; the next try is refused.
            Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset => {
                panic!("connecting failed otherwise: {e}")
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "still serving 10 s after serve was dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
