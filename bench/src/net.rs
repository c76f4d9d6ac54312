//! TCP connections to the server from a chosen loopback source address:
//! one source address has `ip_local_port_range` ports (28,232 by default)
//! towards one server address, so holding more connections than that
//! needs several (127.0.0.1, 127.0.0.2, ... all reach a server on
//! 127.0.0.1).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};

/// The loopback source address of connection `index` of a run spreading
/// its connections over `sources` addresses: 127.0.0.1 upwards.
pub fn source(index: usize, sources: u8) -> Ipv4Addr {
    let offset = (index % usize::from(sources.max(1))) as u8;
    Ipv4Addr::new(127, 0, 0, 1 + offset)
}

/// Connects to `host` (`ip:port`, loopback) from `from`, with no Nagle
/// delay.
pub async fn connect(host: &str, from: Ipv4Addr) -> anyhow::Result<TcpStream> {
    let server: SocketAddr = host.parse()?;
    anyhow::ensure!(server.ip().is_loopback(), "{host}: loopback only");
    let socket = match server.ip() {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if server.is_ipv4() {
        socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
