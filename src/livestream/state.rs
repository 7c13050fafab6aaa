//! The livestream state machine:
//! idle → starting → active → stopping → completed, and starting/active/stopping → failed.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::store::{LivestreamRow, Store, StoreError, TransitionChanges, TransitionOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Idle,
    Starting,
    Active,
    Stopping,
    Completed,
    Failed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Idle,
        Status::Starting,
        Status::Active,
        Status::Stopping,
        Status::Completed,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Starting => "starting",
            Status::Active => "active",
            Status::Stopping => "stopping",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }

    /// The statuses from which `self` may be entered.
    pub fn allowed_from(self) -> &'static [Status] {
        match self {
            Status::Idle => &[],
            Status::Starting => &[Status::Idle],
            Status::Active => &[Status::Starting],
            Status::Stopping => &[Status::Starting, Status::Active],
            Status::Completed => &[Status::Stopping],
            Status::Failed => &[Status::Starting, Status::Active, Status::Stopping],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        to.allowed_from().contains(&self)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown livestream status `{s}`"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("livestream {0} not found")]
    NotFound(Uuid),
    #[error("livestream cannot go from {from} to {to}")]
    Illegal { from: Status, to: Status },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of an applied transition.
#[derive(Debug, Clone)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub row: LivestreamRow,
}

/// Moves livestream `id` to `to`, recording `reason`. Illegal moves change nothing.
pub async fn transition(
    store: &Store,
    id: Uuid,
    to: Status,
    reason: &str,
    error: Option<&str>,
) -> Result<Transition, TransitionError> {
    let allowed: Vec<&str> = to.allowed_from().iter().map(|s| s.as_str()).collect();
    let changes = TransitionChanges {
        error: error.map(str::to_string),
        stamp_started_at: to == Status::Active,
        stamp_ended_at: to.is_terminal(),
    };
    match store
        .transition(id, &allowed, to.as_str(), reason, &changes)
        .await?
    {
        TransitionOutcome::Applied { from, row } => {
            let from = parse_stored(&from);
            crate::metrics::livestream_transition(from.as_str(), to.as_str());
            Ok(Transition {
                from,
                to,
                row: *row,
            })
        }
        TransitionOutcome::NotAllowed { current } => Err(TransitionError::Illegal {
            from: parse_stored(&current),
            to,
        }),
        TransitionOutcome::NotFound => Err(TransitionError::NotFound(id)),
    }
}

/// Stored statuses are guarded by a CHECK constraint, so this cannot fail in practice.
pub fn parse_stored(status: &str) -> Status {
    status.parse().unwrap_or(Status::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_graph() {
        use Status::*;
        let allowed = [
            (Idle, Starting),
            (Starting, Active),
            (Starting, Stopping),
            (Active, Stopping),
            (Stopping, Completed),
            (Starting, Failed),
            (Active, Failed),
            (Stopping, Failed),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        assert!("paused".parse::<Status>().is_err());
    }
}
