//! Moves and copies carry a folder's known paths to their destination,
//! the root included on either side.

use super::tests::{actions, call, rows, sub};
use crate::{EmbeddedStore, Store, StoreOptions};
use callmeter_model::{Action, Operation};

/// After `moves` (source, destination) of a store where `/a/b` was written,
/// the actions of writes to `then`, in order.
fn writes_after(moves: &[(&str, &str)], then: &[&str]) -> Vec<Action> {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_subscription(sub("wh", "/", &[Action::Create, Action::Update])).unwrap();
    let mut events = vec![call("w", Operation::Write, "/a/b", |_| {})];
    for (i, (from, to)) in moves.iter().enumerate() {
        events.push(call(&format!("m{i}"), Operation::Move, from, |e| e.destination = Some(to.to_string())));
    }
    for (i, path) in then.iter().enumerate() {
        events.push(call(&format!("t{i}"), Operation::Write, path, |_| {}));
    }
    store.ingest(events).wait_blocking().unwrap();
    let made = rows(&store, "wh", 1 + then.len());
    store.shutdown();
    actions(&made[1..])
}

#[test]
fn a_folder_moved_carries_its_paths() {
    assert_eq!(writes_after(&[("/a", "/x")], &["/x/b", "/a/b"]), [Action::Update, Action::Create]);
}

#[test]
fn the_root_moved_carries_its_paths_with_their_separator() {
    // Not `/xa/b`: the root's children keep the `/` before them.
    assert_eq!(writes_after(&[("/", "/x")], &["/x/a/b", "/xa/b"]), [Action::Update, Action::Create]);
}

#[test]
fn a_folder_moved_onto_the_root_carries_its_paths_with_one_separator() {
    // Not `//b`.
    assert_eq!(writes_after(&[("/a", "/")], &["/b"]), [Action::Update]);
}
