//! Custom destinations must not point the server at itself or its private
//! network (a go-live would otherwise be a way to make the server connect
//! anywhere inside it), unless `limits.allow_private_destinations` says so.

use std::net::IpAddr;

use super::request::{NamedDestination, ValidationError};
use crate::outputs::DestinationType;

/// Resolves every custom destination's host and refuses loopback, private,
/// link-local and unspecified addresses.
pub async fn check_public(
    destinations: &[NamedDestination],
    allow_private: bool,
) -> Result<(), ValidationError> {
    if allow_private {
        return Ok(());
    }
    for named in destinations.iter().filter(|d| {
        matches!(
            d.destination.kind,
            DestinationType::Custom | DestinationType::Srt
        )
    }) {
        let Some((host, port)) = named.destination.host_port() else {
            continue;
        };
        check_host(&host, port, &format!("destination `{}`", named.name)).await?;
    }
    Ok(())
}

/// Object storage named by a request (egress upload settings): its endpoint
/// must be public too, unless private destinations are allowed.
pub async fn check_endpoint(endpoint: &str, allow_private: bool) -> Result<(), ValidationError> {
    let url = url::Url::parse(endpoint).ok();
    let host_port = url
        .as_ref()
        .and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?)));
    match host_port {
        _ if allow_private => Ok(()),
        Some((host, port)) => {
            check_host(&host, port, &format!("storage endpoint `{endpoint}`")).await
        }
        None => Err(ValidationError {
            code: "invalid_argument",
            message: format!("storage endpoint `{endpoint}` is not an http(s) URL"),
        }),
    }
}

async fn check_host(host: &str, port: u16, what: &str) -> Result<(), ValidationError> {
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ValidationError {
            code: "unresolvable_destination",
            message: format!("{what}: cannot resolve {host}: {e}"),
        })?;
    for address in addresses {
        if is_internal(address.ip()) {
            return Err(ValidationError {
                code: "private_destination",
                message: format!(
                    "{what} resolves to {} (loopback or private); set limits.allow_private_destinations to allow it",
                    address.ip()
                ),
            });
        }
    }
    Ok(())
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::Destination;

    fn custom(url: &str) -> NamedDestination {
        NamedDestination {
            name: "mine".into(),
            destination: Destination::resolve(
                DestinationType::Custom,
                Some("key"),
                Some(url),
                None,
            )
            .unwrap(),
        }
    }

    #[tokio::test]
    async fn loopback_and_private_addresses_are_refused_unless_allowed() {
        for url in [
            "rtmp://127.0.0.1/live",
            "rtmp://localhost:1935/live",
            "rtmp://10.1.2.3/app",
            "rtmp://[::1]/live",
            "rtmps://192.168.0.9/x",
        ] {
            let error = check_public(&[custom(url)], false).await.unwrap_err();
            assert_eq!(error.code, "private_destination", "{url}");
            assert!(check_public(&[custom(url)], true).await.is_ok());
        }
        assert!(
            check_public(&[custom("rtmp://203.0.113.7/live")], false)
                .await
                .is_ok()
        );
    }
}
