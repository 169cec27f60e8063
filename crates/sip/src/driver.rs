//! The tokio drivers: one task owns the [`Core`] and the UDP socket, TCP connections run as
//! small reader/writer tasks that hand framed messages to it over a channel.

use crate::core::{Core, CoreConfig, Input, Output, Peer};
use crate::{batch, parse, CallControl, Probing, Timers, Transport};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Everything the router needs; the caller binds the sockets (port 0 in tests).
#[derive(Debug)]
pub struct SipConfig {
    /// The bound UDP socket.
    pub udp: UdpSocket,
    /// The bound TCP listener, when the router takes TCP.
    pub tcp: Option<TcpListener>,
    /// The IP address others reach us at (Via, Record-Route); `None` takes the UDP socket's,
    /// which then must not be unspecified (0.0.0.0).
    pub advertised: Option<std::net::IpAddr>,
    /// RFC 3261 timer bases.
    pub timers: Timers,
    /// OPTIONS probing of targets.
    pub probing: Probing,
    /// How long a dialog may last without a BYE before the router hangs up both sides, forgets
    /// it and reports its call ended by the system.
    pub max_dialog: Duration,
    /// How host names in target URIs and routes are resolved; `None` leaves them unreachable.
    pub dns: Option<crate::dns::ResolverSettings>,
    /// The cache the resolver fills and the core reads (shared so that callers can see what
    /// is resolved).
    pub hosts: Arc<crate::dns::Hosts>,
}

impl SipConfig {
    /// A configuration over a bound UDP socket with default timers and probing, no TCP.
    pub fn new(udp: UdpSocket) -> Self {
        Self {
            udp,
            tcp: None,
            advertised: None,
            timers: Timers::default(),
            probing: Probing::default(),
            max_dialog: crate::MAX_DIALOG,
            dns: Some(crate::dns::ResolverSettings::default()),
            hosts: Arc::default(),
        }
    }
}

/// Most batches of datagrams read in one wake before timers are looked at.
const DRAIN_BATCHES: usize = 2;

/// What TCP tasks tell the core task.
enum TcpEvent {
    /// One framed message.
    Message(Bytes, SocketAddr),
    /// A connection closed (or an outbound one could not be made).
    Closed(SocketAddr, bool),
}

/// Runs the router until `shutdown` completes.
pub async fn serve(
    config: SipConfig,
    control: Arc<dyn CallControl>,
    shutdown: impl Future,
) -> io::Result<()> {
    let udp_local = config.udp.local_addr()?;
    let ip = config.advertised.unwrap_or(udp_local.ip());
    if ip.is_unspecified() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the UDP socket is bound to an unspecified address: set `advertised`",
        ));
    }
    let tcp_local = match &config.tcp {
        Some(l) => Some(SocketAddr::new(ip, l.local_addr()?.port())),
        None => None,
    };
    let mut core_config = CoreConfig {
        udp: SocketAddr::new(ip, udp_local.port()),
        tcp: tcp_local,
        timers: config.timers,
        probing: config.probing,
        max_dialog: config.max_dialog,
        hosts: None,
    };
    let resolver = config.dns.clone().map(|settings| {
        core_config.hosts = Some(config.hosts.clone());
        tokio::spawn(crate::dns::run_resolver(
            config.hosts.clone(),
            control.clone(),
            settings,
        ))
    });
    let (hops, decided) = crate::Hops::channel();
    control.attach(hops);
    let now = tokio::time::Instant::now();
    let core = Core::new(core_config, control, now.into_std());
    let mut driver = Driver {
        core,
        udp: config.udp,
        conns: HashMap::new(),
        out: Vec::with_capacity(64),
        events: mpsc::unbounded_channel(),
        decided,
    };
    tracing::info!(udp = %udp_local, tcp = ?tcp_local, "SIP router listening");
    let result = driver.run(config.tcp, shutdown).await;
    if let Some(task) = resolver {
        task.abort();
    }
    result
}

/// The core task's state.
struct Driver {
    /// The proxy.
    core: Core,
    /// The UDP socket.
    udp: UdpSocket,
    /// Open TCP connections by peer address: a writer task's queue.
    conns: HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>,
    /// Sends the core asked for, reused between inputs.
    out: Vec<Output>,
    /// TCP tasks' events.
    events: (
        mpsc::UnboundedSender<TcpEvent>,
        mpsc::UnboundedReceiver<TcpEvent>,
    ),
    /// Decisions the control gave as pending, by call key.
    decided: mpsc::UnboundedReceiver<(u64, crate::Hop)>,
}

impl Driver {
    async fn run(&mut self, tcp: Option<TcpListener>, shutdown: impl Future) -> io::Result<()> {
        tokio::pin!(shutdown);
        let mut inbox = batch::Inbox::default();
        loop {
            let deadline = self
                .core
                .next_deadline()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                r = self.udp.readable() => {
                    if let Err(e) = r {
                        tracing::debug!(%e, "UDP socket failed");
                    }
                    // What is queued, a few batches at most before timers are looked at.
                    for _ in 0..DRAIN_BATCHES {
                        match inbox.recv(&self.udp) {
                            Ok(n) => {
                                for i in 0..n {
                                    let (data, from) = inbox.get(i);
                                    self.input_udp(data, from);
                                }
                                if n < batch::BATCH {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                tracing::debug!(%e, "UDP receive failed");
                                break;
                            }
                        }
                    }
                }
                Some(ev) = self.events.1.recv() => self.on_event(ev),
                Some((key, hop)) = self.decided.recv() => {
                    let now = tokio::time::Instant::now().into_std();
                    self.core.handle(Input::Hop { key, hop }, now, &mut self.out);
                }
                accepted = accept(tcp.as_ref()) => {
                    if let Ok((stream, peer)) = accepted {
                        let tx = spawn_conn(stream, peer, self.events.0.clone());
                        self.conns.insert(peer, tx);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
            let now = tokio::time::Instant::now().into_std();
            self.core.poll_timers(now, &mut self.out);
            self.flush().await;
        }
    }

    fn input_udp(&mut self, data: &[u8], from: SocketAddr) {
        tracing::trace!(%from, first = ?data.get(..40), "received");
        let now = tokio::time::Instant::now().into_std();
        let input = Input::Message {
            data: Bytes::copy_from_slice(data),
            from: Peer {
                addr: from,
                transport: Transport::Udp,
            },
        };
        self.core.handle(input, now, &mut self.out);
    }

    fn on_event(&mut self, ev: TcpEvent) {
        let now = tokio::time::Instant::now().into_std();
        match ev {
            TcpEvent::Message(data, from) => {
                let from = Peer {
                    addr: from,
                    transport: Transport::Tcp,
                };
                self.core
                    .handle(Input::Message { data, from }, now, &mut self.out);
            }
            TcpEvent::Closed(peer, failed) => {
                self.conns.remove(&peer);
                if failed {
                    let to = Peer {
                        addr: peer,
                        transport: Transport::Tcp,
                    };
                    self.core
                        .handle(Input::Unreachable { to }, now, &mut self.out);
                }
            }
        }
    }

    /// Sends what the core asked for: UDP datagrams in batches, in order, TCP messages to
    /// their connections' writer tasks.
    async fn flush(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        let datagrams: Vec<(SocketAddr, &[u8])> = out
            .iter()
            .filter(|o| o.to.transport == Transport::Udp)
            .map(|o| (o.to.addr, &o.data[..]))
            .collect();
        let mut sent = 0;
        while sent < datagrams.len() {
            match batch::send(&self.udp, &datagrams[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.udp.writable().await {
                        tracing::debug!(%e, "UDP socket failed");
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(%e, to = %datagrams[sent].0, "UDP send failed");
                    sent += 1;
                }
            }
        }
        drop(datagrams);
        for o in out.drain(..) {
            tracing::trace!(to = %o.to.addr, first = ?o.data.get(..40), "send");
            match o.to.transport {
                Transport::Udp => {}
                Transport::Tcp => {
                    let addr = o.to.addr;
                    let tx = self.conns.entry(addr).or_insert_with(|| {
                        let (tx, rx) = mpsc::unbounded_channel();
                        tokio::spawn(connect(addr, rx, self.events.0.clone()));
                        tx
                    });
                    if tx.send(o.data).is_err() {
                        self.conns.remove(&addr);
                    }
                }
            }
        }
        self.out = out;
    }
}

async fn accept(tcp: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match tcp {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Opens an outbound connection, then runs it as an accepted one would.
async fn connect(
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Bytes>,
    events: mpsc::UnboundedSender<TcpEvent>,
) {
    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => run_conn(stream, addr, rx, events).await,
        _ => {
            let _ = events.send(TcpEvent::Closed(addr, true));
        }
    }
}

fn spawn_conn(
    stream: TcpStream,
    peer: SocketAddr,
    events: mpsc::UnboundedSender<TcpEvent>,
) -> mpsc::UnboundedSender<Bytes> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run_conn(stream, peer, rx, events));
    tx
}

/// Reads framed messages to the core and writes what it sends, until either side closes.
async fn run_conn(
    stream: TcpStream,
    peer: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    events: mpsc::UnboundedSender<TcpEvent>,
) {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if write.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(8192);
    'read: loop {
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            match parse::frame(&buf) {
                Ok(Some(n)) => {
                    let msg = buf.split_to(n).freeze();
                    if events.send(TcpEvent::Message(msg, peer)).is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%e, %peer, "unframeable TCP stream closed");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
    let _ = events.send(TcpEvent::Closed(peer, false));
}
