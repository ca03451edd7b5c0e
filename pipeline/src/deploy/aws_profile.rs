//! A named profile of the AWS tools' shared files, for when the environment holds no keys:
//! `object_store` reads only the environment (and web identity, container and instance
//! credentials), while teams often keep keys in `~/.aws/credentials` under `AWS_PROFILE`.
//!
//! The files and their precedence are the AWS CLI's: keys from the credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, sections `[name]`), else from the
//! config file (`AWS_CONFIG_FILE`, else `~/.aws/config`, sections `[profile name]` and
//! `[default]`); the region from the config file. Profiles that get their keys some other way
//! (`role_arn`, `sso_session`, `credential_process`) are refused with a clear error rather than
//! half-supported.

use anyhow::{bail, Context, Result};
use ini::Ini;
use std::path::{Path, PathBuf};

/// Keys (and region) read from a profile.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

// Never print the secret, even in a debug log.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Keys the shared files would have the AWS tools use, as this process's environment directs:
/// `None` when the environment already holds keys or no profile file names any.
pub fn from_env() -> Result<Option<Profile>> {
    load(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// [`from_env`] with the environment looked up through `env`.
pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Profile>> {
    if env("AWS_ACCESS_KEY_ID").is_some() {
        return Ok(None);
    }
    let explicit = env("AWS_PROFILE");
    let name = explicit.clone().unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))?;
    let config = read(file("AWS_CONFIG_FILE", "config"))?;
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let in_credentials = credentials
        .as_ref()
        .and_then(|(_, ini)| ini.section(Some(name.as_str())));
    let in_config = config
        .as_ref()
        .and_then(|(_, ini)| ini.section(Some(config_section.as_str())));
    if in_credentials.is_none() && in_config.is_none() {
        if explicit.is_some() {
            let looked: Vec<String> = [&credentials, &config]
                .iter()
                .filter_map(|f| f.as_ref().map(|(p, _)| p.display().to_string()))
                .collect();
            bail!(
                "AWS_PROFILE={name}: no such profile in {}",
                if looked.is_empty() {
                    "the AWS shared files (none exist)".to_string()
                } else {
                    looked.join(" or ")
                }
            );
        }
        return Ok(None);
    }
    let get = |key: &str| {
        in_credentials
            .and_then(|s| s.get(key))
            .or_else(|| in_config.and_then(|s| s.get(key)))
            .map(str::to_string)
    };
    let region = in_config.and_then(|s| s.get("region")).map(str::to_string);
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Profile {
            name,
            access_key_id,
            secret_access_key,
            session_token: get("aws_session_token"),
            region,
        })),
        (None, None) => {
            if let Some(how) = [
                "role_arn",
                "sso_session",
                "sso_start_url",
                "credential_process",
            ]
            .into_iter()
            .find(|k| get(k).is_some())
            {
                bail!(
                    "AWS profile {name} gets its keys through {how}, which searchbar does not \
                     do: export them instead (`aws configure export-credentials --profile {name} \
                     --format env`)"
                );
            }
            // A profile with a region only: keys come from elsewhere (instance, container).
            Ok(None)
        }
        _ => bail!(
            "AWS profile {name} has one of aws_access_key_id and aws_secret_access_key but not \
             the other"
        ),
    }
}

fn read(path: Option<PathBuf>) -> Result<Option<(PathBuf, Ini)>> {
    let Some(path) = path.filter(|p| Path::is_file(p)) else {
        return Ok(None);
    };
    let ini = Ini::load_from_file(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some((path, ini)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<Option<Profile>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(".aws").join(name), text).unwrap();
        }
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("HOME".into(), dir.path().display().to_string());
        load(&|k| env.get(k).cloned())
    }

    const CREDENTIALS: &str = "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = sdef\n\n\
                               [deployer]\naws_access_key_id = AKDEP\naws_secret_access_key = sdep\n\
                               aws_session_token = tok\n";
    const CONFIG: &str =
        "[default]\nregion = eu-west-1\n\n[profile deployer]\nregion = eu-north-1\n\n\
                          [profile sso]\nsso_session = corp\n\n[profile keys-here]\n\
                          aws_access_key_id = AKCFG\naws_secret_access_key = scfg\n";

    #[test]
    fn keys_and_region_come_from_the_named_profile_as_the_aws_tools_read_them() {
        let files = [("credentials", CREDENTIALS), ("config", CONFIG)];
        let p = with(&files, &[]).unwrap().unwrap();
        assert_eq!(
            (p.access_key_id.as_str(), p.region.as_deref()),
            ("AKDEF", Some("eu-west-1"))
        );
        let p = with(&files, &[("AWS_PROFILE", "deployer")])
            .unwrap()
            .unwrap();
        assert_eq!(p.access_key_id, "AKDEP");
        assert_eq!(p.secret_access_key, "sdep");
        assert_eq!(p.session_token.as_deref(), Some("tok"));
        assert_eq!(p.region.as_deref(), Some("eu-north-1"));
        // Keys may live in the config file too.
        let p = with(&files, &[("AWS_PROFILE", "keys-here")])
            .unwrap()
            .unwrap();
        assert_eq!(p.access_key_id, "AKCFG");
        // The secret never reaches a log line.
        assert!(!format!("{p:?}").contains("scfg"));
    }

    #[test]
    fn the_environment_wins_and_an_unknown_or_unsupported_profile_is_an_error() {
        let files = [("credentials", CREDENTIALS), ("config", CONFIG)];
        assert_eq!(
            with(&files, &[("AWS_ACCESS_KEY_ID", "AKENV")]).unwrap(),
            None
        );
        let e = with(&files, &[("AWS_PROFILE", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AWS_PROFILE=nope") && e.contains("credentials"),
            "{e}"
        );
        let e = with(&files, &[("AWS_PROFILE", "sso")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sso_session") && e.contains("export-credentials"),
            "{e}"
        );
        let half = [("credentials", "[default]\naws_access_key_id = AK\n")];
        assert!(with(&half, &[]).is_err());
        // No files and no profile asked for: nothing to add.
        assert_eq!(with(&[], &[]).unwrap(), None);
        assert!(with(&[], &[("AWS_PROFILE", "x")]).is_err());
        // Other files named by the environment.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("creds");
        std::fs::write(&f, CREDENTIALS).unwrap();
        let p = with(
            &[],
            &[
                ("AWS_SHARED_CREDENTIALS_FILE", f.to_str().unwrap()),
                ("AWS_PROFILE", "deployer"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.access_key_id, "AKDEP");
        assert_eq!(p.region, None);
    }
}
