// SPDX-License-Identifier: Apache-2.0
// A `MemFs` whose logs can hold one append. Included by verify's adapters and printed into the
// tests verify writes for a case with a `group`: the names in scope give `FileSystem`, `MemFs`,
// `ReadableFile`, `WritableFile` and `Result`.

/// The hold of [`HoldFs`]: `(armed, holding)`: the next append to a log is held; one is now.
#[derive(Debug, Default)]
struct Gate {
    state: std::sync::Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// How long a held append, or a wait for one, lasts at most.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    /// Holds the next append to a log until [`Gate::release`].
    fn arm(&self) {
        self.state.lock().unwrap().0 = true;
    }

    /// Whether an append is held now.
    fn holding(&self) -> bool {
        self.state.lock().unwrap().1
    }

    /// Waits (bounded) until an append is held; whether one is.
    fn wait_held(&self) -> bool {
        let state = self.state.lock().unwrap();
        let wait = self
            .changed
            .wait_timeout_while(state, Self::PATIENCE, |s| !s.1);
        wait.unwrap().0 .1
    }

    /// Disarms the gate and lets the held append go on.
    fn release(&self) {
        *self.state.lock().unwrap() = (false, false);
        self.changed.notify_all();
    }

    /// Called by each append to a log: held there if the gate is armed.
    fn pass(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        if !state.0 {
            return Ok(());
        }
        *state = (false, true);
        self.changed.notify_all();
        let wait = self
            .changed
            .wait_timeout_while(state, Self::PATIENCE, |s| s.1);
        anyhow::ensure!(
            !wait.unwrap().1.timed_out(),
            "verify held this log append and never let it go"
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
        self.gate.pass()?;
        self.file.append(data)
    }

    fn sync(&mut self) -> Result<()> {
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
