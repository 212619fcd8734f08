//! The pid file (MOSN's `pid` key): written at start, removed at stop, read
//! by `meshgate stop` / `meshgate reload` to find the running instance.

use std::io;
use std::path::{Path, PathBuf};

/// A pid file this process wrote; removed on drop if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's pid to `path` (creating parent directories).
    /// Refuses when the file names another live process: two gateways on one
    /// pid file would make `stop` ambiguous.
    pub fn create(path: &Path) -> io::Result<PidFile> {
        if let Some(pid) = read(path)?
            && pid != std::process::id()
            && process_alive(pid)
        {
            {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} names running process {pid}; stop it or choose another `pid` path",
                        path.display()
                    ),
                ));
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read(&self.path).ok().flatten() == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The pid in `path`, `None` if the file does not exist.
pub fn read(path: &Path) -> io::Result<Option<u32>> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not hold a pid: {text:?}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when a process with `pid` exists (signal 0 probes without sending).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_and_removed() {
        let dir = std::env::temp_dir().join(format!("meshgate-pid-{}", std::process::id()));
        let path = dir.join("run/meshgate.pid");
        {
            let _pid = PidFile::create(&path).unwrap();
            assert_eq!(read(&path).unwrap(), Some(std::process::id()));
            // Our own pid in the file is not "another live process".
            let _again = PidFile::create(&path).unwrap();
        }
        assert_eq!(read(&path).unwrap(), None, "removed on drop");
        std::fs::write(&path, "1\n").unwrap(); // pid 1 is always alive
        assert!(
            PidFile::create(&path)
                .unwrap_err()
                .to_string()
                .contains("running process 1")
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(read(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
