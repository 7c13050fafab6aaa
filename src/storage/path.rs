//! Object keys from templates such as `hls/{room_name}/{livestream_id}`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 3] = ["room_name", "livestream_id", "time"];

/// What fills a template's placeholders.
pub struct ObjectPath<'a> {
    pub room_name: &'a str,
    pub livestream_id: Uuid,
    /// When the livestream started (UTC, `20261121T120400Z`).
    pub time: DateTime<Utc>,
}

impl ObjectPath<'_> {
    /// Checks a template: balanced braces, known placeholders, a relative key.
    pub fn check(template: &str) -> Result<(), String> {
        if template.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if template.starts_with('/') {
            return Err("object keys are relative: remove the leading `/`".into());
        }
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{{` without a closing `}}` in `{template}`"))?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` (use {})",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ));
            }
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`}}` without an opening `{{` in `{template}`"));
        }
        Ok(())
    }

    /// The key for `template` (already checked at configuration time).
    pub fn render(&self, template: &str) -> String {
        template
            .replace("{room_name}", self.room_name)
            .replace("{livestream_id}", &self.livestream_id.to_string())
            .replace("{time}", &self.time.format("%Y%m%dT%H%M%SZ").to_string())
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let id = Uuid::parse_str("5538d5b4-fdf4-4975-a3f9-018dc3e7a2bb").unwrap();
        let time = DateTime::parse_from_rfc3339("2026-11-21T12:04:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let path = ObjectPath {
            room_name: "demo",
            livestream_id: id,
            time,
        };
        assert_eq!(
            path.render("hls/{room_name}/{livestream_id}/"),
            "hls/demo/5538d5b4-fdf4-4975-a3f9-018dc3e7a2bb"
        );
        assert_eq!(
            path.render("rec/{time}-{room_name}.mp4"),
            "rec/20261121T120400Z-demo.mp4"
        );
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(ObjectPath::check("hls/{room_name}/{livestream_id}").is_ok());
        assert!(ObjectPath::check("").is_err());
        assert!(ObjectPath::check("/abs/{room_name}").is_err());
        assert!(
            ObjectPath::check("x/{room}")
                .unwrap_err()
                .contains("{room}")
        );
        assert!(ObjectPath::check("x/{room_name").is_err());
        assert!(ObjectPath::check("x/room_name}").is_err());
    }
}
