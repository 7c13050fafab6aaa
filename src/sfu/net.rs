//! The media sockets: one UDP port on each node address. A socket per
//! address (rather than one on 0.0.0.0) tells us which local address a packet
//! arrived on, which ICE needs to match it to a candidate.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;

/// Every IPv4 address of this machine's interfaces, loopback first. Local
/// peers (aiortc, GStreamer) use loopback; Chromium offers no loopback
/// candidates, so the interface addresses matter too.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut found = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifaddr in addrs {
            let Some(ip) = ifaddr
                .address
                .and_then(|a| a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
            else {
                continue;
            };
            let link_local = matches!(ip, IpAddr::V4(v4) if v4.is_link_local());
            if !link_local && !found.contains(&ip) {
                found.push(ip);
            }
        }
    }
    found
}

/// Binds `port` on each address; with port 0 the first bind picks the port
/// and the rest reuse it, so every candidate shares one port number.
pub async fn bind_media_sockets(
    ips: &[IpAddr],
    port: u16,
) -> io::Result<Vec<(SocketAddr, Arc<UdpSocket>)>> {
    let mut sockets = Vec::with_capacity(ips.len());
    let mut port = port;
    for ip in ips {
        let socket = UdpSocket::bind(SocketAddr::new(*ip, port))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind UDP {ip}:{port}: {e}")))?;
        enlarge_receive_buffer(&socket);
        let local = socket.local_addr()?;
        port = local.port();
        sockets.push((local, Arc::new(socket)));
    }
    Ok(sockets)
}

/// Bytes of datagrams a media socket may hold while the SFU loop is busy.
/// The kernel default (~208 kB) overflowed with a few hundred viewers'
/// RTCP feedback in the benchmark.
const RECEIVE_BUFFER: usize = 4 << 20;

/// Best effort: as root past `net.core.rmem_max`, otherwise up to it.
fn enlarge_receive_buffer(socket: &UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    let forced = setsockopt(socket, sockopt::RcvBufForce, &RECEIVE_BUFFER);
    if forced.is_err()
        && let Err(error) = setsockopt(socket, sockopt::RcvBuf, &RECEIVE_BUFFER)
    {
        tracing::debug!(%error, "could not enlarge the media socket's receive buffer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_one_port_on_every_address() {
        let ips = interface_addresses();
        assert_eq!(ips[0], IpAddr::V4(Ipv4Addr::LOCALHOST));
        let sockets = bind_media_sockets(&ips, 0).await.unwrap();
        let port = sockets[0].0.port();
        assert!(sockets.iter().all(|(addr, _)| addr.port() == port));
    }
}
