//! Turning off checksum and segmentation offloads on an interface (the `ethtool -K <dev> tx off
//! tso off gso off` of LAB-RECIPES) through the SIOCETHTOOL ioctl. OVS's userspace datapath
//! cannot handle unchecksummed or oversized GSO frames from a veth: without this TCP stalls.
//! Must be called on a thread inside the interface's namespace.

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// Disables tx checksumming, TSO and GSO on `dev`.
pub fn offloads_off(dev: &str) -> Result<(), String> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(format!("interface name {dev} is too long"));
    }
    // SAFETY: a plain datagram socket, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    let mut result = Ok(());
    for cmd in [ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGSO] {
        let mut value = EthtoolValue { cmd, data: 0 };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: &mut value as *mut EthtoolValue as *mut libc::c_void,
            _pad: [0; 16],
        };
        req.name[..dev.len()].copy_from_slice(dev.as_bytes());
        // SAFETY: req and value live across the call; the kernel reads/writes only them.
        let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req as *mut IfReq) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            // A device without the feature (EOPNOTSUPP) has nothing to turn off.
            if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
                result = Err(format!("ethtool {cmd:#x} on {dev}: {err}"));
                break;
            }
        }
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}
