//! Who may sign in: users with a role, kept in the tool's state beside the outputs
//! (`users.json`, mode 0600), passwords hashed with argon2id.

use std::path::PathBuf;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

/// The log page's access levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Views the log and exports it.
    Manager,
    /// Also retries failed syncs and manages users.
    Administrator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "Manager",
            Role::Administrator => "Administrator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "manager" => Some(Role::Manager),
            "administrator" | "admin" => Some(Role::Administrator),
            _ => None,
        }
    }

    pub fn is_admin(self) -> bool {
        self == Role::Administrator
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The argon2id hash (PHC string), never the password.
    password: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    users: Vec<User>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("Cannot read the users file {path}: {reason}; fix or remove it, then add users again.")]
    Unreadable { path: String, reason: String },
    #[error("Cannot write the users file {path}: {reason}; make the state folder writable.")]
    Unwritable { path: String, reason: String },
    #[error("A user name is 1 to 64 letters, digits, `.`, `_`, `-` or `@`; {0:?} is not.")]
    BadName(String),
    #[error("A password has at least 8 characters.")]
    ShortPassword,
    #[error("There is already a user {0:?}; use `helpscout-etl users passwd {0}` to change the password.")]
    Exists(String),
    #[error("There is no user {0:?}; `helpscout-etl users list` shows who there is.")]
    Unknown(String),
    #[error("The last administrator cannot be removed or demoted: add another administrator first.")]
    LastAdministrator,
}

impl UsersError {
    /// Whether the user asked for something that cannot be (rather than the file failing).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, UsersError::Unreadable { .. } | UsersError::Unwritable { .. })
    }
}

pub const MIN_PASSWORD: usize = 8;

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
}

fn hash(password: &str) -> Result<String, UsersError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(UsersError::ShortPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2id hashes any password").to_string())
}

/// A hash to check against when the user does not exist, so that an unknown name takes as
/// long as a wrong password.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password").unwrap_or_default())
}

/// The users file.
#[derive(Debug, Clone)]
pub struct UserStore {
    pub path: PathBuf,
}

impl UserStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UserStore { path: path.into() }
    }

    fn read(&self) -> Result<UsersFile, UsersError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| UsersError::Unreadable { path: self.path.display().to_string(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
            Err(e) => Err(UsersError::Unreadable { path: self.path.display().to_string(), reason: e.to_string() }),
        }
    }

    fn write(&self, file: &UsersFile) -> Result<(), UsersError> {
        let text = serde_json::to_string_pretty(file).expect("users serialise");
        crate::fsutil::write_atomic(&self.path, text.as_bytes(), true).map_err(|e| UsersError::Unwritable { path: self.path.display().to_string(), reason: e.to_string() })
    }

    pub fn list(&self) -> Result<Vec<User>, UsersError> {
        Ok(self.read()?.users)
    }

    pub fn get(&self, name: &str) -> Result<Option<User>, UsersError> {
        Ok(self.read()?.users.into_iter().find(|u| u.name == name))
    }

    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<(), UsersError> {
        if !valid_name(name) {
            return Err(UsersError::BadName(name.into()));
        }
        let mut file = self.read()?;
        if file.users.iter().any(|u| u.name == name) {
            return Err(UsersError::Exists(name.into()));
        }
        file.users.push(User { name: name.into(), role, password: hash(password)? });
        self.write(&file)
    }

    pub fn remove(&self, name: &str) -> Result<(), UsersError> {
        let mut file = self.read()?;
        let Some(i) = file.users.iter().position(|u| u.name == name) else { return Err(UsersError::Unknown(name.into())) };
        if file.users[i].role.is_admin() && file.users.iter().filter(|u| u.role.is_admin()).count() == 1 {
            return Err(UsersError::LastAdministrator);
        }
        file.users.remove(i);
        self.write(&file)
    }

    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UsersError> {
        let mut file = self.read()?;
        let user = file.users.iter_mut().find(|u| u.name == name).ok_or_else(|| UsersError::Unknown(name.into()))?;
        user.password = hash(password)?;
        self.write(&file)
    }

    /// The user, when the password is theirs.
    pub fn verify(&self, name: &str, password: &str) -> Result<Option<User>, UsersError> {
        let user = self.get(name)?;
        let stored = user.as_ref().map_or(decoy(), |u| u.password.as_str());
        let ok = PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        Ok(user.filter(|_| ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_added_verified_and_removed_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("state/users.json"));
        assert!(store.list().unwrap().is_empty());
        store.add("ann", Role::Administrator, "correct horse").unwrap();
        store.add("bob", Role::Manager, "battery staple").unwrap();
        assert!(matches!(store.add("bob", Role::Manager, "whatever long"), Err(UsersError::Exists(_))));
        assert!(matches!(store.add("<b>", Role::Manager, "whatever long"), Err(UsersError::BadName(_))));
        assert!(matches!(store.add("cy", Role::Manager, "short"), Err(UsersError::ShortPassword)));
        assert_eq!(store.verify("ann", "correct horse").unwrap().map(|u| u.role), Some(Role::Administrator));
        assert!(store.verify("ann", "wrong horse").unwrap().is_none());
        assert!(store.verify("nobody", "correct horse").unwrap().is_none());
        let text = std::fs::read_to_string(&store.path).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&store.path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(matches!(store.remove("ann"), Err(UsersError::LastAdministrator)));
        store.remove("bob").unwrap();
        store.set_password("ann", "new password!").unwrap();
        assert!(store.verify("ann", "new password!").unwrap().is_some());
        assert_eq!(Role::parse("Admin"), Some(Role::Administrator));
    }
}
