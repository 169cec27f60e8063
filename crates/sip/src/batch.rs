//! UDP datagrams in batches: `recvmmsg(2)` reads up to [`BATCH`] datagrams in one system call and
//! `sendmmsg(2)` writes up to [`BATCH`], each to its own address.
//!
//! Under load the router wakes to a burst of requests and responses, and what it sends for them
//! goes out together after the burst. One call per batch rather than per datagram saves the
//! system-call entry and exit each datagram paid, and the kernel delivers a batch sent on the
//! loopback in one pass of its receive processing. Neither tokio nor `socket2` offers these
//! calls; they are two FFI calls here, over buffers the caller keeps, behind a safe interface.
//! Elsewhere than Linux the same interface reads and writes one datagram per call.

use std::io;
use std::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Most datagrams read or written in one system call.
pub const BATCH: usize = 32;

/// The largest UDP payload: a slot holds any datagram whole.
const SLOT: usize = 65_536;

/// Buffers for reading a batch: [`BATCH`] slots of the largest datagram, and the length and
/// source of what each slot last received.
pub struct Inbox {
    /// The slots, one after another (pages are touched only as datagrams fill them).
    buf: Vec<u8>,
    /// What the last read left: each datagram's slot, length and source.
    got: Vec<(usize, usize, SocketAddr)>,
}

impl Default for Inbox {
    fn default() -> Self {
        Self {
            buf: vec![0; SLOT * BATCH],
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl Inbox {
    /// Reads the datagrams queued on `socket` without waiting, up to [`BATCH`]: the number read
    /// (none when each was cut or came from other than an IP address, and was dropped), or
    /// `WouldBlock` when none is queued (which clears the socket's readiness).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        let got = &mut self.got;
        let buf = &mut self.buf;
        socket.try_io(Interest::READABLE, || imp::recv(socket, buf, got))?;
        Ok(self.got.len())
    }

    /// The `i`th datagram of the last read and where it came from.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let (slot, len, from) = self.got[i];
        (&self.buf[slot * SLOT..slot * SLOT + len], from)
    }
}

/// Writes datagrams from the front of `out` without waiting, up to [`BATCH`]: the number written,
/// at least one. `WouldBlock` when the socket's buffer is full (which clears its readiness); any
/// other error is the first datagram's, which was not sent.
pub fn send(socket: &UdpSocket, out: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    if out.is_empty() {
        return Ok(0);
    }
    socket.try_io(Interest::WRITABLE, || imp::send(socket, out))
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{BATCH, SLOT};
    use socket2::{SockAddr, SockAddrStorage};
    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;
    use tokio::net::UdpSocket;

    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
        got: &mut Vec<(usize, usize, SocketAddr)>,
    ) -> io::Result<()> {
        debug_assert_eq!(buf.len(), SLOT * BATCH);
        let mut addrs: [SockAddrStorage; BATCH] =
            std::array::from_fn(|_| SockAddrStorage::zeroed());
        // SAFETY: iovec and mmsghdr are plain C structs for which all zeroes is a valid value.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, ((iov, hdr), addr)) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(addrs.iter_mut())
            .enumerate()
        {
            iov.iov_base = buf[i * SLOT..].as_mut_ptr().cast();
            iov.iov_len = SLOT;
            hdr.msg_hdr.msg_name = (addr as *mut SockAddrStorage).cast();
            hdr.msg_hdr.msg_namelen = addr.size_of();
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each header points at its own slot of `buf` (SLOT bytes, in bounds by the
        // assertion above), its own iovec and its own address storage, all of which outlive
        // the call; the kernel writes no more than the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (slot, (hdr, addr)) in hdrs.iter().zip(addrs).take(n as usize).enumerate() {
            // SAFETY: the kernel initialised `msg_namelen` bytes of this storage.
            let from = unsafe { SockAddr::new(addr, hdr.msg_hdr.msg_namelen) }.as_socket();
            let len = hdr.msg_len as usize;
            // A slot holds the largest datagram, so nothing is cut; a source other than an IP
            // address cannot be answered and is dropped, as `recv_from` would fail on it.
            if let Some(from) = from.filter(|_| hdr.msg_hdr.msg_flags & libc::MSG_TRUNC == 0) {
                got.push((slot, len, from));
            }
        }
        Ok(())
    }

    pub(super) fn send(socket: &UdpSocket, out: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        let out = &out[..out.len().min(BATCH)];
        let addrs: [Option<SockAddr>; BATCH] =
            std::array::from_fn(|i| out.get(i).map(|(to, _)| SockAddr::from(*to)));
        // SAFETY: as in `recv`.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (((iov, hdr), addr), (_, data)) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(addrs.iter().flatten())
            .zip(out)
        {
            iov.iov_base = data.as_ptr().cast_mut().cast();
            iov.iov_len = data.len();
            hdr.msg_hdr.msg_name = addr.as_ptr().cast_mut().cast();
            hdr.msg_hdr.msg_namelen = addr.len();
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `out.len()` headers point at datagrams and addresses borrowed for
        // the call, which the kernel only reads.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                out.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::SLOT;
    use std::io;
    use std::net::SocketAddr;
    use tokio::net::UdpSocket;

    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
        got: &mut Vec<(usize, usize, SocketAddr)>,
    ) -> io::Result<()> {
        let (len, from) = socket.try_recv_from(&mut buf[..SLOT])?;
        got.push((0, len, from));
        Ok(())
    }

    pub(super) fn send(socket: &UdpSocket, out: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        let (to, data) = out[0];
        socket.try_send_to(data, to)?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order_with_its_sources() {
        let (a, b) = pair().await;
        let (c, _) = pair().await;
        let to = b.local_addr().unwrap();
        let sizes = [1usize, 1400, 9000, 40, 65_507];
        let data: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| vec![i as u8 + 1; *n])
            .collect();
        let out: Vec<(SocketAddr, &[u8])> = data.iter().map(|d| (to, d.as_slice())).collect();
        let mut sent = 0;
        while sent < out.len() {
            a.writable().await.unwrap();
            match send(&a, &out[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send failed: {e}"),
            }
        }
        c.send_to(b"from c", to).await.unwrap();
        let mut inbox = Inbox::default();
        let mut seen: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        while seen.len() < sizes.len() + 1 {
            b.readable().await.unwrap();
            match inbox.recv(&b) {
                Ok(n) => {
                    assert!(n >= 1);
                    for i in 0..n {
                        let (d, from) = inbox.get(i);
                        seen.push((d.to_vec(), from));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv failed: {e}"),
            }
        }
        for (i, d) in data.iter().enumerate() {
            assert_eq!(&seen[i].0, d, "datagram {i}");
            assert_eq!(seen[i].1, a.local_addr().unwrap());
        }
        assert_eq!(seen[5], (b"from c".to_vec(), c.local_addr().unwrap()));
        assert!(matches!(inbox.recv(&b), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
    }

    #[tokio::test]
    async fn more_than_a_batch_is_sent_in_several_calls_to_each_address() {
        let (a, b) = pair().await;
        let (c, _) = pair().await;
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        let n = BATCH + 7;
        let data: Vec<[u8; 2]> = (0..n).map(|i| [i as u8, (i % 2) as u8]).collect();
        let out: Vec<(SocketAddr, &[u8])> = data
            .iter()
            .enumerate()
            .map(|(i, d)| (if i % 2 == 0 { to_b } else { to_c }, d.as_slice()))
            .collect();
        a.writable().await.unwrap();
        let first = send(&a, &out).unwrap();
        assert_eq!(first, BATCH, "one call writes a whole batch");
        assert_eq!(send(&a, &out[first..]).unwrap(), n - BATCH);
        for (socket, parity) in [(&b, 0u8), (&c, 1u8)] {
            let mut inbox = Inbox::default();
            let mut got = Vec::new();
            while got.len() < n.div_ceil(2) - parity as usize {
                socket.readable().await.unwrap();
                if let Ok(k) = inbox.recv(socket) {
                    got.extend((0..k).map(|i| inbox.get(i).0.to_vec()));
                }
            }
            assert!(got.iter().all(|d| d[1] == parity));
            let order: Vec<u8> = got.iter().map(|d| d[0]).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(order, sorted, "datagrams to one address keep their order");
        }
    }

    #[tokio::test]
    async fn a_datagram_that_cannot_go_fails_alone() {
        let (a, b) = pair().await;
        let v6 = SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 9));
        let to = b.local_addr().unwrap();
        let out: Vec<(SocketAddr, &[u8])> = vec![(v6, b"no"), (to, b"yes")];
        a.writable().await.unwrap();
        let e = send(&a, &out).unwrap_err();
        assert_ne!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(send(&a, &out[1..]).unwrap(), 1);
        let mut inbox = Inbox::default();
        b.readable().await.unwrap();
        assert_eq!(inbox.recv(&b).unwrap(), 1);
        assert_eq!(inbox.get(0).0, b"yes");
    }
}
