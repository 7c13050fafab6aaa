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
/// Behind 1:1 NAT peers send to `public_ip`, which no local socket has: the
/// first non-loopback socket takes that address as its own, so it is what
/// ICE announces and what its datagrams are taken to be sent to (replies
/// still leave from that socket, which the NAT maps back).
pub fn announce_public_ip(
    mut sockets: Vec<(SocketAddr, Arc<UdpSocket>)>,
    public_ip: Option<IpAddr>,
) -> Vec<(SocketAddr, Arc<UdpSocket>)> {
    if let Some(ip) = public_ip
        && let Some((address, _)) = sockets.iter_mut().find(|(a, _)| !a.ip().is_loopback())
    {
        tracing::info!(local = %address, public = %ip, "announcing the public address for this socket");
        address.set_ip(ip);
    }
    sockets
}

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

    #[tokio::test]
    async fn the_public_ip_replaces_the_first_interface_address() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addresses = ["127.0.0.1:7882", "172.17.0.2:7882", "10.0.0.5:7882"];
        let sockets = || {
            addresses
                .iter()
                .map(|a| (a.parse::<SocketAddr>().unwrap(), socket.clone()))
                .collect::<Vec<_>>()
        };
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let announced: Vec<String> = announce_public_ip(sockets(), Some(public))
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        assert_eq!(
            announced,
            ["127.0.0.1:7882", "203.0.113.7:7882", "10.0.0.5:7882"]
        );
        let unchanged: Vec<String> = announce_public_ip(sockets(), None)
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        assert_eq!(unchanged, addresses);
    }
}
