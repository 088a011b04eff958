//! smoke
use crate::lsm_storage::{LsmStorageOptions, MiniLsm};

#[test]
fn smoke_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmStorageOptions::default_for_week1_test();
    options.enable_wal = true;
    let lsm = MiniLsm::open(dir.path(), options.clone()).unwrap();
    lsm.put(b"a", b"1").unwrap();
    lsm.force_flush().unwrap();
    lsm.put(b"b", b"2").unwrap();
    lsm.delete(b"a").unwrap();
    lsm.close().unwrap();
    drop(lsm);
    let lsm = MiniLsm::open(dir.path(), options.clone()).unwrap();
    assert_eq!(lsm.get(b"a").unwrap(), None);
    assert_eq!(lsm.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    println!("{}", lsm.dump());
    lsm.force_flush().unwrap();
    drop(lsm);
    let lsm = MiniLsm::open(dir.path(), options).unwrap();
    assert_eq!(lsm.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    println!("{}", lsm.dump());
    println!(
        "{:?}",
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
}
