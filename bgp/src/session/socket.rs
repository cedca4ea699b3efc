//! Socket set-up: outgoing connections and the listener, with TCP MD5 signatures (RFC 2385)
//! and the generalized TTL security mechanism (RFC 5082).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Linux `struct tcp_md5sig` (libc does not define it).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

fn setsockopt<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size we pass, and fd is an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt` name of the extended MD5 option (Linux 4.13), which reads `flags` and
/// `prefix_len`.
const TCP_MD5SIG_EXT: libc::c_int = 32;
/// `flags` bit: the key covers `prefix_len` bits of the address, not just the address.
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;

/// Install (or with an empty key, remove) the MD5 key for segments to/from `peer`.
pub fn set_md5(fd: &impl AsRawFd, peer: IpAddr, key: &str) -> io::Result<()> {
    set_md5_for(fd, peer, None, key)
}

/// Install (or with an empty key, remove) the MD5 key for segments to/from every address of
/// `prefix` (a listener's dynamic neighbours). The kernel picks the longest match, so a key
/// of a configured peer inside the prefix still applies to that peer.
pub fn set_md5_prefix(fd: &impl AsRawFd, prefix: ipnet::IpNet, key: &str) -> io::Result<()> {
    set_md5_for(fd, prefix.network(), Some(prefix.prefix_len()), key)
}

fn set_md5_for(
    fd: &impl AsRawFd,
    peer: IpAddr,
    prefix_len: Option<u8>,
    key: &str,
) -> io::Result<()> {
    if key.len() > crate::config::MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "md5 key longer than 80 bytes",
        ));
    }
    // SAFETY: all-zero is a valid sockaddr_storage and TcpMd5Sig.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    match peer {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut sig.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(a).to_be();
        }
        IpAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut sig.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
        }
    }
    sig.key_len = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key.as_bytes());
    match prefix_len {
        None => setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig),
        Some(len) => {
            sig.flags = TCP_MD5SIG_FLAG_PREFIX;
            sig.prefix_len = len;
            setsockopt(fd, libc::IPPROTO_TCP, TCP_MD5SIG_EXT, &sig)
        }
    }
}

/// GTSM: send with TTL 255 and drop anything that arrives from further than `hops` away.
pub fn set_ttl_security(fd: &impl AsRawFd, v6: bool, hops: u8) -> io::Result<()> {
    let ttl: libc::c_int = 255;
    let min: libc::c_int = 256 - libc::c_int::from(hops.max(1));
    if v6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)?;
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &min)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &min)
    }
}

/// Options for one peer's sockets.
#[derive(Debug, Clone, Default)]
pub struct SocketOptions {
    pub local_address: Option<IpAddr>,
    pub md5_password: Option<String>,
    pub ttl_security: Option<u8>,
}

/// Connect to a peer with its options applied before the SYN.
pub async fn connect(peer: SocketAddr, opts: &SocketOptions) -> io::Result<TcpStream> {
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = opts.local_address {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    if let Some(key) = &opts.md5_password {
        set_md5(&socket, peer.ip(), key)?;
    }
    if let Some(hops) = opts.ttl_security {
        set_ttl_security(&socket, peer.is_ipv6(), hops)?;
    }
    let stream = socket.connect(peer).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Bind the listener; MD5 keys for configured peers are added with `set_md5` on it, those of
/// dynamic-neighbour prefixes with `set_md5_prefix`.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}
