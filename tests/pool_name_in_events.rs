//! The pool's name, given at run time, is the `pool` field of its warnings: a proxy with one
//! pool per upstream can tell from its logs which upstream failed.
#![cfg(not(shadowcat_loom))]

mod support;

use shadowcat_pool::{keyed_fn, Error, KeyedPoolOptions};
use support::{options, CreateMode, TestManager, Warnings};

#[tokio::test]
async fn a_failed_create_is_logged_with_the_pools_run_time_name() {
    let warnings = Warnings::default();
    let _installed = warnings.install();
    let upstream = 7;
    let pool = options(1)
        .name(format!("upstream-{upstream}"))
        .build(TestManager::new().plan(&[CreateMode::Fail]))
        .unwrap();
    assert!(matches!(pool.acquire().await, Err(Error::Create(_))));

    let messages = warnings.0.lock().unwrap().clone();
    let pools = warnings.1.lock().unwrap().clone();
    assert_eq!(messages, ["creating a pooled resource failed"]);
    assert_eq!(pools, [Some("upstream-7".to_string())]);
}

#[tokio::test]
async fn a_keyed_pools_failed_create_is_logged_with_its_name_not_the_default() {
    let warnings = Warnings::default();
    let _installed = warnings.install();
    let pool = KeyedPoolOptions::new()
        .name(String::from("routes"))
        .max_per_key(1)
        .max_total(1)
        .build(keyed_fn(|_: &u32| async {
            Err::<u32, _>(std::io::Error::other("refused"))
        }))
        .unwrap();
    assert!(matches!(pool.acquire(&1).await, Err(Error::Create(_))));

    let pools = warnings.1.lock().unwrap().clone();
    assert_eq!(pools, [Some("routes".to_string())]);
}
