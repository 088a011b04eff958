// SPDX-License-Identifier: Apache-2.0
//! Options are checked at `open`: every field out of range is an error that names it, before any
//! file is touched (`bloom_bits_per_key = usize::MAX` once aborted the process at the first
//! flush).

use std::sync::Arc;
use std::time::Duration;

use mini_lsm::compact::{
    CompactionOptions, LeveledCompactionOptions, SimpleLeveledCompactionOptions,
    TieredCompactionOptions,
};
use mini_lsm::fs::{FileSystem, MemFs};
use mini_lsm::lsm_storage::{LsmStorageInner, LsmStorageOptions};

/// Each setting out of range makes `open` fail with an error naming it, creating no file; the
/// settings at the edges of each range open.
#[test]
fn test_every_option_out_of_range_is_an_error_naming_it() {
    type Edit = fn(&mut LsmStorageOptions);
    let bad: [(&str, Edit); 14] = [
        ("block_size", |o| o.block_size = 0),
        ("block_size", |o| o.block_size = 65536),
        ("target_sst_size", |o| o.target_sst_size = 0),
        ("target_sst_size", |o| o.target_sst_size = usize::MAX),
        ("num_memtable_limit", |o| o.num_memtable_limit = 0),
        ("write_stall_margin", |o| o.write_stall_margin = usize::MAX),
        ("write_stall_timeout", |o| {
            o.write_stall_timeout = Duration::ZERO
        }),
        ("write_stall_timeout", |o| {
            o.write_stall_timeout = Duration::MAX
        }),
        ("bloom_bits_per_key", |o| o.bloom_bits_per_key = usize::MAX),
        ("bloom_bits_per_key", |o| o.bloom_bits_per_key = 0),
        ("max_levels", |o| {
            o.compaction_options = CompactionOptions::Leveled(LeveledCompactionOptions {
                max_levels: usize::MAX,
                ..Default::default()
            })
        }),
        ("base_level_size_mb", |o| {
            o.compaction_options = CompactionOptions::Leveled(LeveledCompactionOptions {
                base_level_size_mb: usize::MAX,
                ..Default::default()
            })
        }),
        ("size_ratio_percent", |o| {
            o.compaction_options = CompactionOptions::Simple(SimpleLeveledCompactionOptions {
                size_ratio_percent: usize::MAX,
                ..Default::default()
            })
        }),
        ("max_size_amplification_percent", |o| {
            o.compaction_options = CompactionOptions::Tiered(TieredCompactionOptions {
                max_size_amplification_percent: usize::MAX,
                ..Default::default()
            })
        }),
    ];
    for (field, edit) in bad {
        let fs = MemFs::new();
        let mut options = LsmStorageOptions::default_for_week1_test();
        options.fs = Arc::new(fs.clone());
        edit(&mut options);
        let error = match LsmStorageInner::open("/db", options) {
            Ok(_) => panic!("{field} out of range: open succeeded"),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            error.contains(field),
            "the error must name {field}: {error}"
        );
        assert!(!fs.exists("/db".as_ref()), "{field}: open touched the disk");
    }
    let good: [Edit; 5] = [
        |o| o.block_size = 65535,
        |o| o.bloom_bits_per_key = 64,
        |o| o.write_stall_timeout = Duration::from_millis(1),
        |o| o.block_cache_bytes = 0,
        |o| o.write_stall_margin = 0,
    ];
    for edit in good {
        let fs = MemFs::new();
        let mut options = LsmStorageOptions::default_for_week1_test();
        options.fs = Arc::new(fs.clone());
        edit(&mut options);
        let inner = LsmStorageInner::open("/db", options).unwrap();
        inner.put(b"k", b"v").unwrap();
        inner.freeze_memtable().unwrap();
        inner.force_flush_next_imm_memtable().unwrap();
        assert_eq!(inner.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}

/// The settings of week 4's stalls and memory budget are checked at open too: each bad one is
/// an error naming it (and, for the L0 triggers, what they conflict with), touching no file;
/// the edges of each range open.
#[test]
fn test_stall_settings_out_of_range_are_errors_naming_them() {
    type Edit = fn(&mut LsmStorageOptions);
    fn leveled() -> CompactionOptions {
        CompactionOptions::Leveled(LeveledCompactionOptions {
            level0_file_num_compaction_trigger: 4,
            ..Default::default()
        })
    }
    let bad: [(&str, Edit); 10] = [
        ("l0_slowdown_delay", |o| {
            o.l0_slowdown_delay = Duration::ZERO
        }),
        ("l0_slowdown_delay", |o| {
            o.l0_slowdown_delay = Duration::from_secs(2)
        }),
        ("memory_budget", |o| o.memory_budget = Some(1024)),
        ("memory_budget", |o| o.memory_budget = Some(usize::MAX)),
        ("no compaction strategy", |o| {
            o.l0_stop_writes_trigger = Some(10)
        }),
        ("l0_slowdown_writes_trigger is 0", |o| {
            o.compaction_options = leveled();
            o.l0_slowdown_writes_trigger = Some(0);
        }),
        ("level0_file_num_compaction_trigger (4)", |o| {
            o.compaction_options = leveled();
            o.l0_stop_writes_trigger = Some(4);
        }),
        ("num_tiers (4)", |o| {
            o.compaction_options = CompactionOptions::Tiered(TieredCompactionOptions::default());
            o.l0_slowdown_writes_trigger = Some(3);
        }),
        ("must be below l0_stop_writes_trigger", |o| {
            o.compaction_options = leveled();
            o.l0_slowdown_writes_trigger = Some(8);
            o.l0_stop_writes_trigger = Some(8);
        }),
        ("l0_stop_writes_trigger is 100000", |o| {
            o.compaction_options = leveled();
            o.l0_stop_writes_trigger = Some(100_000);
        }),
    ];
    for (needle, edit) in bad {
        let fs = MemFs::new();
        let mut options = LsmStorageOptions::default_for_week1_test();
        options.fs = Arc::new(fs.clone());
        edit(&mut options);
        let error = match LsmStorageInner::open("/db", options) {
            Ok(_) => panic!("{needle}: open succeeded"),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            error.contains(needle),
            "the error must say {needle:?}: {error}"
        );
        assert!(
            !fs.exists("/db".as_ref()),
            "{needle}: open touched the disk"
        );
    }
    let good: [Edit; 5] = [
        |o| o.l0_slowdown_delay = Duration::from_micros(1),
        |o| o.l0_slowdown_delay = Duration::from_secs(1),
        |o| o.memory_budget = Some(4096),
        |o| {
            o.compaction_options = CompactionOptions::Leveled(LeveledCompactionOptions {
                level0_file_num_compaction_trigger: 4,
                ..Default::default()
            });
            o.l0_slowdown_writes_trigger = Some(5);
            o.l0_stop_writes_trigger = Some(6);
        },
        |o| {
            o.compaction_options = CompactionOptions::Tiered(TieredCompactionOptions::default());
            o.l0_stop_writes_trigger = Some(5);
        },
    ];
    for edit in good {
        let fs = MemFs::new();
        let mut options = LsmStorageOptions::default_for_week1_test();
        options.fs = Arc::new(fs.clone());
        edit(&mut options);
        let inner = LsmStorageInner::open("/db", options).unwrap();
        inner.put(b"k", b"v").unwrap();
        assert_eq!(inner.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
