// figment::Jail closures must return figment::Error, which is large.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

fn load(cli: &CliOverrides) -> Result<Config, ConfigError> {
    Config::load(None, cli)
}

/// Blanks variables the developer's shell may have set (empty values are ignored).
fn isolate(jail: &mut Jail) {
    jail.set_env("DATABASE_URL", "");
    jail.set_env("ONAIR_KEYS", "");
}

fn dev() -> CliOverrides {
    CliOverrides {
        dev: Some(true),
        ..Default::default()
    }
}

#[test]
fn defaults_need_a_key_outside_dev_mode() {
    Jail::expect_with(|jail| {
        isolate(jail);
        let err = load(&CliOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("`keys`"), "{err}");
        Ok(())
    });
}

#[test]
fn dev_mode_adds_the_dev_key_pair() {
    Jail::expect_with(|jail| {
        isolate(jail);
        let config = load(&dev()).unwrap();
        assert_eq!(config.keys[DEV_API_KEY].expose(), DEV_API_SECRET);
        assert!(config.server.dev);
        assert!(!config.server.node_id.is_empty());
        assert_eq!(config.database_url(), None);
        Ok(())
    });
}

#[test]
fn environment_overrides_defaults() {
    Jail::expect_with(|jail| {
        isolate(jail);
        jail.set_env("ONAIR_SERVER__LISTEN", "0.0.0.0:9999");
        jail.set_env("ONAIR_LIMITS__MAX_LIVESTREAMS", "7");
        jail.set_env("ONAIR_KEYS", "k1: s1, k2: s2");
        jail.set_env("DATABASE_URL", "postgres://u@h/db");
        let config = load(&CliOverrides::default()).unwrap();
        assert_eq!(config.server.listen.port(), 9999);
        assert_eq!(config.limits.max_livestreams, 7);
        assert_eq!(config.keys["k2"].expose(), "s2");
        assert!(!config.keys.contains_key(DEV_API_KEY));
        assert_eq!(config.database_url(), Some("postgres://u@h/db"));
        Ok(())
    });
}

#[test]
fn config_file_sits_between_defaults_and_environment() {
    Jail::expect_with(|jail| {
        isolate(jail);
        jail.create_file(
            "onair.toml",
            "[keys]\nfilekey = \"filesecret\"\n[media]\nrecordings_dir = \"/rec\"\n",
        )?;
        jail.set_env("ONAIR_MEDIA__RECORDINGS_DIR", "/env-rec");
        let config = Config::load(Some(Path::new("onair.toml")), &CliOverrides::default()).unwrap();
        assert_eq!(config.keys["filekey"].expose(), "filesecret");
        assert_eq!(config.media.recordings_dir, PathBuf::from("/env-rec"));
        Ok(())
    });
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("ONAIR_SERVER__LISTEN", "not-an-address", "listen"),
        ("ONAIR_LIMITS__MAX_LIVESTREAMS", "many", "max_livestreams"),
        (
            "ONAIR_LIMITS__MAX_DESTINATIONS",
            "0",
            "limits.max_destinations",
        ),
        ("ONAIR_SERVER__PUBLIC_URL", "ftp://x", "server.public_url"),
        ("ONAIR_SERVER__NO_SUCH_KEY", "1", "no_such_key"),
        ("ONAIR_KEYS", "missing-colon", "ONAIR_KEYS"),
        ("ONAIR_MUX__TOKEN_ID", "only-the-id", "mux.token_secret"),
        ("ONAIR_MUX__INGEST_URL", "https://x", "mux.ingest_url"),
        ("ONAIR_SFU__WEBHOOK_API_KEY", "nokey", "sfu.webhook_api_key"),
        (
            "ONAIR_SFU__EMPTY_TIMEOUT_SECS",
            "0",
            "sfu.empty_timeout_secs",
        ),
    ];
    for (var, value, named) in cases {
        Jail::expect_with(|jail| {
            isolate(jail);
            jail.set_env(var, value);
            let err = load(&dev()).unwrap_err().to_string();
            assert!(
                err.to_lowercase().contains(&named.to_lowercase()),
                "{var}={value}: {err}"
            );
            Ok(())
        });
    }
}

#[test]
fn secrets_do_not_print() {
    Jail::expect_with(|jail| {
        isolate(jail);
        jail.set_env("ONAIR_KEYS", "k: supersecretvalue");
        jail.set_env("DATABASE_URL", "postgres://user:dbpassword@h/db");
        let config = load(&CliOverrides::default()).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("supersecretvalue"), "{printed}");
        assert!(!printed.contains("dbpassword"), "{printed}");
        Ok(())
    });
}

#[test]
fn cli_overrides_win() {
    Jail::expect_with(|jail| {
        isolate(jail);
        jail.set_env("ONAIR_SERVER__LISTEN", "0.0.0.0:9999");
        let cli = CliOverrides {
            dev: Some(true),
            listen: Some("127.0.0.1:1234".parse().unwrap()),
        };
        let config = load(&cli).unwrap();
        assert_eq!(config.server.listen.port(), 1234);
        Ok(())
    });
}
