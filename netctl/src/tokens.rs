//! Where the tokens of `netctl login` live, and which one a command sends.
//!
//! `$XDG_CONFIG_HOME/netctl/tokens.json` (else `~/.config/netctl/tokens.json`), directory 0700,
//! file 0600, one entry per netmaster URL so two masters' tokens never mix:
//! `{"netmasters": {"https://10.0.0.1:9999": {"username": "admin", "token": "..."}}}`.
//! A command sends, first found: `$NETCTL_TOKEN` (for scripts), this file's entry for its
//! `--netmaster`, then Contiv's `~/.netctl/config.json` (`{"token": "..."}`, written by Contiv's
//! `netctl login`; not keyed by URL, so, as in Contiv, only sent to `https://` URLs).
//!
//! With several masters (`--netmaster https://a,https://b`), one login is valid on all of them
//! (they share the signing key and the sessions through their store): `login` saves the token
//! under each URL of the list, and a command sends the token saved for the first URL of its list
//! that has one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable whose token wins over the files (Contiv had none).
pub const TOKEN_ENV: &str = "NETCTL_TOKEN";

const FILE_NAME: &str = "tokens.json";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no config directory: neither XDG_CONFIG_HOME nor HOME is set")]
    NoHome,
    #[error("token file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// One saved login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub username: String,
    pub token: String,
}

/// The token file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default)]
    netmasters: BTreeMap<String, Saved>,
}

/// Where a command's token came from (logout treats them differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    Store,
    Contiv(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    pub source: Source,
}

/// The directory of netctl's files: `$XDG_CONFIG_HOME/netctl` when that is an absolute path
/// (the XDG rule), else `$HOME/.config/netctl`.
pub fn config_dir(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    if let Some(xdg) = xdg_config_home.map(PathBuf::from) {
        if xdg.is_absolute() {
            return Some(xdg.join("netctl"));
        }
    }
    home.filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config").join("netctl"))
}

/// Contiv's netctl config, `$HOME/.netctl/config.json`.
pub fn contiv_config(home: Option<OsString>) -> Option<PathBuf> {
    home.filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".netctl").join("config.json"))
}

/// The key of a netmaster URL: scheme and host lowercased, the scheme's default port and
/// trailing slashes dropped, so `HTTPS://Master:443/` and `https://master` share a token.
pub fn url_key(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(port) = default_port {
        if let Some(host) = authority.strip_suffix(port) {
            authority = host.to_string();
        }
    }
    format!("{scheme}://{authority}{path}")
}

/// netctl's token file.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    pub fn in_dir(dir: PathBuf) -> TokenStore {
        TokenStore { dir }
    }

    /// The store of this user, from the environment.
    pub fn from_env() -> Result<TokenStore, TokenError> {
        config_dir(
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        )
        .map(TokenStore::in_dir)
        .ok_or(TokenError::NoHome)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn error(&self, reason: impl ToString) -> TokenError {
        TokenError::File {
            path: self.path(),
            reason: reason.to_string(),
        }
    }

    /// The file's contents; an absent file is an empty one.
    fn load(&self) -> Result<TokenFile, TokenError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
            Err(e) => return Err(self.error(e)),
        };
        if let Some(mode) = others_can_read(&path) {
            crate::client::warn(&format!(
                "token file {} has mode {mode:o}, readable by others: chmod 600 it",
                path.display()
            ));
        }
        serde_json::from_str(&text)
            .map_err(|e| self.error(format!("{e} (remove it and log in again)")))
    }

    /// The saved login for this netmaster URL.
    pub fn get(&self, url: &str) -> Result<Option<Saved>, TokenError> {
        Ok(self.load()?.netmasters.remove(&url_key(url)))
    }

    /// Saves (replaces) the login for this netmaster URL.
    #[cfg(test)]
    pub fn save(&self, url: &str, saved: Saved) -> Result<(), TokenError> {
        self.save_all(&[url.to_string()], saved)
    }

    /// Saves (replaces) one login for every URL of a control plane, in one write.
    pub fn save_all(&self, urls: &[String], saved: Saved) -> Result<(), TokenError> {
        let mut file = self.load()?;
        for url in urls {
            file.netmasters.insert(url_key(url), saved.clone());
        }
        self.write(&file)
    }

    /// Forgets the login for this URL; whether there was one.
    #[cfg(test)]
    pub fn remove(&self, url: &str) -> Result<bool, TokenError> {
        self.remove_all(&[url.to_string()])
    }

    /// Forgets the logins of these URLs; whether there was any.
    pub fn remove_all(&self, urls: &[String]) -> Result<bool, TokenError> {
        let mut file = self.load()?;
        let mut removed = false;
        for url in urls {
            removed |= file.netmasters.remove(&url_key(url)).is_some();
        }
        if !removed {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }

    /// Writes the whole file atomically: a 0600 temporary file in the 0700 directory, synced,
    /// then renamed over the old one.
    fn write(&self, file: &TokenFile) -> Result<(), TokenError> {
        create_private_dir(&self.dir).map_err(|e| self.error(e))?;
        let text = serde_json::to_string_pretty(file).map_err(|e| self.error(e))? + "\n";
        let tmp = self
            .dir
            .join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        let written =
            write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, self.path()));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.error(e));
        }
        Ok(())
    }
}

/// Creates the directory (and parents) with mode 0700, and narrows it to 0700 if it exists.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Creates a new file readable by its owner only and writes `data` to disk.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// The file's mode when group or others may read it.
fn others_can_read(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Contiv's `~/.netctl/config.json`: `{"token": "..."}`.
#[derive(Debug, Deserialize)]
struct ContivConfig {
    #[serde(default)]
    token: String,
}

fn read_contiv(path: &Path) -> Result<Option<String>, TokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TokenError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let config: ContivConfig = serde_json::from_str(&text).map_err(|e| TokenError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Some(config.token).filter(|t| !t.is_empty()))
}

/// The token to send to the masters `urls` (one control plane): `env` (the value of
/// `$NETCTL_TOKEN`), else the store's entry of the first URL that has one, else Contiv's file
/// when every URL is `https://`.
pub fn resolve(
    urls: &[String],
    env: Option<String>,
    store: Option<&TokenStore>,
    contiv: Option<&Path>,
) -> Result<Option<Found>, TokenError> {
    if let Some(token) = env.filter(|t| !t.trim().is_empty()) {
        return Ok(Some(Found {
            token: token.trim().to_string(),
            source: Source::Env,
        }));
    }
    if let Some(store) = store {
        for url in urls {
            if let Some(saved) = store.get(url)? {
                return Ok(Some(Found {
                    token: saved.token,
                    source: Source::Store,
                }));
            }
        }
    }
    // A failover may send it to any URL of the list.
    let https = !urls.is_empty() && urls.iter().all(|u| url_key(u).starts_with("https://"));
    if let (Some(path), true) = (contiv, https) {
        if let Some(token) = read_contiv(path)? {
            return Ok(Some(Found {
                token,
                source: Source::Contiv(path.to_path_buf()),
            }));
        }
    }
    Ok(None)
}

/// [`resolve`] with this process's environment.
pub fn resolve_from_env(urls: &[String]) -> Result<Option<Found>, TokenError> {
    let env = std::env::var(TOKEN_ENV).ok();
    let store = TokenStore::from_env().ok();
    let contiv = contiv_config(std::env::var_os("HOME"));
    resolve(urls, env, store.as_ref(), contiv.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    fn saved(user: &str, token: &str) -> Saved {
        Saved {
            username: user.into(),
            token: token.into(),
        }
    }

    #[test]
    fn config_dir_follows_xdg() {
        let dir = config_dir(Some("/x/cfg".into()), Some("/home/u".into()));
        assert_eq!(dir, Some(PathBuf::from("/x/cfg/netctl")));
        // A relative or empty XDG_CONFIG_HOME is ignored, as the spec says.
        for xdg in [Some("rel".into()), Some("".into()), None] {
            assert_eq!(
                config_dir(xdg, Some("/home/u".into())),
                Some(PathBuf::from("/home/u/.config/netctl"))
            );
        }
        assert_eq!(config_dir(None, None), None);
        assert_eq!(
            contiv_config(Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.netctl/config.json"))
        );
    }

    #[test]
    fn url_keys() {
        assert_eq!(url_key("HTTPS://Master:443/"), "https://master");
        assert_eq!(url_key("https://master"), "https://master");
        assert_eq!(url_key("https://master:9999//"), "https://master:9999");
        assert_eq!(url_key("http://h:80"), "http://h");
        assert_eq!(url_key("http://h:8080"), "http://h:8080");
        assert_eq!(url_key("https://[::1]:9999"), "https://[::1]:9999");
        assert_ne!(url_key("http://h:9999"), url_key("https://h:9999"));
    }

    #[test]
    fn tokens_are_per_url_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg").join("netctl");
        let store = TokenStore::in_dir(dir.clone());
        assert_eq!(store.get("https://a:9999").unwrap(), None);
        store.save("https://a:9999", saved("admin", "ta")).unwrap();
        store.save("https://b:9999/", saved("ops", "tb")).unwrap();
        assert_eq!(
            store.get("https://A:9999/").unwrap(),
            Some(saved("admin", "ta"))
        );
        assert_eq!(
            store.get("https://b:9999").unwrap(),
            Some(saved("ops", "tb"))
        );
        assert_eq!(store.get("http://a:9999").unwrap(), None);
        #[cfg(unix)]
        {
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&store.path()), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        // A new login replaces the old token of the same master only.
        store.save("https://a:9999", saved("admin", "ta2")).unwrap();
        assert_eq!(store.get("https://a:9999").unwrap().unwrap().token, "ta2");
        assert_eq!(store.get("https://b:9999").unwrap().unwrap().token, "tb");
        assert!(store.remove("https://a:9999").unwrap());
        assert!(!store.remove("https://a:9999").unwrap());
        assert_eq!(store.get("https://a:9999").unwrap(), None);
        assert_eq!(store.get("https://b:9999").unwrap().unwrap().token, "tb");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[cfg(unix)]
    #[test]
    fn a_wider_file_or_dir_is_narrowed_on_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("netctl");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = TokenStore::in_dir(dir.clone());
        std::fs::write(store.path(), "{}").unwrap();
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        store.save("https://a", saved("u", "t")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(tmp.path().to_path_buf());
        std::fs::write(store.path(), "not json").unwrap();
        let err = store.get("https://a").unwrap_err().to_string();
        assert!(err.contains("tokens.json"), "{err}");
        assert!(store.save("https://a", saved("u", "t")).is_err());
    }

    #[test]
    fn env_then_store_then_contiv() {
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(tmp.path().join("netctl"));
        let contiv = tmp.path().join("config.json");
        std::fs::write(&contiv, r#"{"token":"from-contiv"}"#).unwrap();
        let url = "https://m:9999";
        let urls = [url.to_string()];
        let found = |env: Option<&str>| {
            resolve(&urls, env.map(String::from), Some(&store), Some(&contiv)).unwrap()
        };
        assert_eq!(
            found(None),
            Some(Found {
                token: "from-contiv".into(),
                source: Source::Contiv(contiv.clone())
            })
        );
        store.save(url, saved("admin", "from-store")).unwrap();
        assert_eq!(found(None).unwrap().token, "from-store");
        assert_eq!(found(None).unwrap().source, Source::Store);
        let env = found(Some("from-env\n")).unwrap();
        assert_eq!((env.token.as_str(), env.source), ("from-env", Source::Env));
        // An empty variable is no token.
        assert_eq!(found(Some("")).unwrap().source, Source::Store);
        // Contiv's unkeyed token never goes to a plain-HTTP URL.
        assert_eq!(
            resolve(
                &["http://m:9999".to_string()],
                None,
                Some(&store),
                Some(&contiv)
            )
            .unwrap(),
            None
        );
        assert_eq!(
            resolve(&urls, None, None, Some(&tmp.path().join("absent.json"))).unwrap(),
            None
        );
    }

    #[test]
    fn one_login_serves_every_master_of_the_list() {
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::in_dir(tmp.path().join("netctl"));
        let contiv = tmp.path().join("config.json");
        std::fs::write(&contiv, r#"{"token":"from-contiv"}"#).unwrap();
        let list = |urls: &[&str]| urls.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        let both = list(&["https://a:9999", "https://b:9999/"]);
        store.save_all(&both, saved("admin", "shared")).unwrap();
        for url in ["https://a:9999", "https://B:9999"] {
            assert_eq!(store.get(url).unwrap().unwrap().token, "shared", "{url}");
        }
        // A list naming a master logged in before finds its token wherever it stands.
        let later = list(&["https://c:9999", "https://b:9999"]);
        let found = resolve(&later, None, Some(&store), None).unwrap().unwrap();
        assert_eq!(
            (found.token.as_str(), found.source),
            ("shared", Source::Store)
        );
        // The first URL with a token wins.
        store
            .save("https://c:9999", saved("ops", "c-only"))
            .unwrap();
        let found = resolve(&later, None, Some(&store), None).unwrap().unwrap();
        assert_eq!(found.token, "c-only");
        // Contiv's unkeyed token only when no URL of the list is plain HTTP.
        let mixed = list(&["https://d:9999", "http://e:9999"]);
        assert_eq!(
            resolve(&mixed, None, Some(&store), Some(&contiv)).unwrap(),
            None
        );
        let secure = list(&["https://d:9999", "https://e:9999"]);
        assert_eq!(
            resolve(&secure, None, Some(&store), Some(&contiv))
                .unwrap()
                .unwrap()
                .token,
            "from-contiv"
        );
        // Logout forgets it under every URL of the list.
        assert!(store.remove_all(&both).unwrap());
        assert_eq!(store.get("https://a:9999").unwrap(), None);
        assert_eq!(store.get("https://b:9999").unwrap(), None);
        assert!(!store.remove_all(&both).unwrap());
        assert_eq!(
            store.get("https://c:9999").unwrap().unwrap().token,
            "c-only"
        );
    }
}
