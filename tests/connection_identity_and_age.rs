//! What a checked-out connection says about itself: a pool-unique id in creation order, its age
//! and creation time on the pool's clock (tokio's, so a paused clock drives it), the metadata the
//! hooks see, and a `Debug` that shows the id and the resource.
#![cfg(not(shadowcat_loom))]

use std::time::Duration;

use shadowcat_pool::{Pool, PoolOptions};

fn pool(max: usize) -> Pool<&'static str> {
    PoolOptions::new()
        .max_connections(max)
        .idle_timeout(None)
        .max_lifetime(None)
        .build_with(|| async { Ok::<_, std::io::Error>("upstream") })
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn ids_follow_creation_order_and_age_follows_the_clock() {
    let pool = pool(2);
    let a = pool.acquire().await.unwrap();
    let born = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_secs(5)).await;
    let b = pool.acquire().await.unwrap();
    assert!(b.id() > a.id(), "ids {} then {}", a.id(), b.id());

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(a.age(), Duration::from_secs(7));
    assert_eq!(b.age(), Duration::from_secs(2));
    assert_eq!(a.created_at(), born);
    let meta = a.metadata();
    assert_eq!(meta.id, a.id());
    assert_eq!(meta.age, Duration::from_secs(7));

    // The same resource keeps its id and age across checkouts.
    let a_id = a.id();
    drop(a);
    drop(b);
    let again = pool.acquire().await.unwrap(); // oldest idle first
    assert_eq!(again.id(), a_id);
    assert_eq!(again.age(), Duration::from_secs(7));
}

#[tokio::test]
async fn debug_shows_the_id_the_resource_and_the_pool_state() {
    let pool = pool(1);
    let conn = pool.acquire().await.unwrap();
    let shown = format!("{conn:?}");
    assert!(shown.contains("PoolConnection"), "{shown}");
    assert!(shown.contains(&format!("id: {}", conn.id())), "{shown}");
    assert!(shown.contains("\"upstream\""), "{shown}");

    let state = format!("{pool:?}");
    assert!(state.contains("size: 1"), "{state}");
    assert!(state.contains("avail: 0"), "{state}");
    assert_eq!(
        (pool.size(), pool.num_idle(), pool.max_connections()),
        (1, 0, 1)
    );
    drop(conn);
    assert_eq!(pool.num_idle(), 1);
}
