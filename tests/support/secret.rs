//! A secret file of the test's own, as `--secret-file` takes it: mode 0600, removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::unique;

pub struct SecretFile(PathBuf);

impl SecretFile {
    pub fn new(content: &str) -> SecretFile {
        let path = std::env::temp_dir().join(unique("secret"));
        std::fs::write(&path, content).expect("write the secret");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        SecretFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
