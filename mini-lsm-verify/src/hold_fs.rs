// SPDX-License-Identifier: Apache-2.0
// A `MemFs` whose logs can hold one append or one sync. Included by verify's adapters and printed
// into the tests verify writes for a case with a `group`: the names in scope give `FileSystem`,
// `MemFs`, `ReadableFile`, `WritableFile` and `Result`.

/// The hold of a [`HoldFs`]: which log operation it holds next, and whether it holds one now.
#[derive(Debug, Default)]
struct Hold {
    /// Hold the next append to a log.
    append: bool,
    /// Hold the `syncs`-th sync of a log from now (0: none).
    syncs: u32,
    /// An append or a sync is held now.
    holding: bool,
}

/// Where a [`HoldFs`] holds a log operation, until [`Gate::release`].
#[derive(Debug, Default)]
struct Gate {
    state: std::sync::Mutex<Hold>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// How long a held operation, or a wait for one, lasts at most.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    /// Holds the next append to a log.
    fn arm(&self) {
        self.state.lock().unwrap().append = true;
    }

    /// Holds the `n`-th sync of a log from now.
    fn arm_sync(&self, n: u32) {
        self.state.lock().unwrap().syncs = n;
    }

    /// Whether an operation is held now.
    fn holding(&self) -> bool {
        self.state.lock().unwrap().holding
    }

    /// Waits (bounded) until an operation is held; whether one is.
    fn wait_held(&self) -> bool {
        let state = self.state.lock().unwrap();
        let wait = self
            .changed
            .wait_timeout_while(state, Self::PATIENCE, |s| !s.holding);
        wait.unwrap().0.holding
    }

    /// Lets the held operation go on, and holds no further append (a sync armed stays armed).
    fn release(&self) {
        let mut state = self.state.lock().unwrap();
        state.append = false;
        state.holding = false;
        self.changed.notify_all();
    }

    /// Called by each append (`sync` false) or sync of a log: held there if it is the one armed.
    fn pass(&self, sync: bool) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        let held = if sync {
            let armed = state.syncs > 0;
            state.syncs = state.syncs.saturating_sub(1);
            armed && state.syncs == 0
        } else {
            std::mem::take(&mut state.append)
        };
        if !held {
            return Ok(());
        }
        state.holding = true;
        self.changed.notify_all();
        let wait = self
            .changed
            .wait_timeout_while(state, Self::PATIENCE, |s| s.holding);
        anyhow::ensure!(
            !wait.unwrap().1.timed_out(),
            "verify held this log operation and never let it go"
        );
        Ok(())
    }
}

/// A [`MemFs`] whose log files (`*.wal`) pass their appends through a [`Gate`].
#[derive(Debug, Clone)]
struct HoldFs {
    mem: MemFs,
    gate: std::sync::Arc<Gate>,
}

/// A log file of a [`HoldFs`].
struct HeldFile {
    file: Box<dyn WritableFile>,
    gate: std::sync::Arc<Gate>,
}

impl WritableFile for HeldFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.gate.pass(false)?;
        self.file.append(data)
    }

    fn sync(&mut self) -> Result<()> {
        self.gate.pass(true)?;
        self.file.sync()
    }
}

impl HoldFs {
    fn wrap(&self, path: &std::path::Path, file: Box<dyn WritableFile>) -> Box<dyn WritableFile> {
        if path.extension().is_some_and(|ext| ext == "wal") {
            let gate = std::sync::Arc::clone(&self.gate);
            Box::new(HeldFile { file, gate })
        } else {
            file
        }
    }
}

impl FileSystem for HoldFs {
    fn create_dir_all(&self, dir: &std::path::Path) -> Result<()> {
        self.mem.create_dir_all(dir)
    }
    fn create(&self, path: &std::path::Path) -> Result<Box<dyn WritableFile>> {
        Ok(self.wrap(path, self.mem.create(path)?))
    }
    fn open_append(&self, path: &std::path::Path) -> Result<Box<dyn WritableFile>> {
        Ok(self.wrap(path, self.mem.open_append(path)?))
    }
    fn open(&self, path: &std::path::Path) -> Result<std::sync::Arc<dyn ReadableFile>> {
        self.mem.open(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> Result<()> {
        self.mem.rename(from, to)
    }
    fn remove(&self, path: &std::path::Path) -> Result<()> {
        self.mem.remove(path)
    }
    fn list(&self, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
        self.mem.list(dir)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> Result<()> {
        self.mem.sync_dir(dir)
    }
    fn exists(&self, path: &std::path::Path) -> bool {
        self.mem.exists(path)
    }
}
